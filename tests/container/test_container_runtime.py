"""What the container image would run, run without a container engine.

No Docker engine exists on these machines, so this test replays the Dockerfile by hand:

1. the build context is exactly the ``.dockerignore`` allowlist, copied to a scratch
   directory (so a file the wheel needs but the allowlist forgets fails here);
2. ``python -m build --wheel`` builds the wheel from it, as the builder stage does;
3. a clean virtualenv (a system interpreter, nothing of the dev environment) gets the wheel
   and its declared dependencies, then loses pip and setuptools, as in the image;
4. the exporter runs as uid/gid 65532 with no home directory, from a directory it cannot
   write, inside a mount namespace whose root filesystem is read-only (Kubernetes'
   ``readOnlyRootFilesystem``): ``--version``, then ``--demo`` with a scrape of /metrics,
   /healthz and /readyz, then SIGTERM.

Steps 2 and 3 fetch the build backend and the runtime dependencies from PyPI, as
``docker build`` would. The mount namespace needs root (CAP_SYS_ADMIN), which the test
machines have.
"""

from __future__ import annotations

import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import exporter
from tests.process import free_port

ROOT = Path(__file__).resolve().parents[2]
UID = GID = 65532  # the Dockerfile's USER
POLL_SECONDS = 60.0
pytestmark = pytest.mark.slow

INTERPRETERS = ("/usr/local/bin/python3", "/usr/bin/python3")
WORLD_WRITABLE_PROBE = "/tmp/oke-probe"  # noqa: S108 (a write there must fail: read-only root)


@dataclass(frozen=True)
class Installed:
    venv: Path
    workdir: Path  # read-only for the exporter's user
    wheel: Path


def allowlist() -> list[str]:
    lines = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert lines[0] == "*"
    return [line[1:].rstrip("/") for line in lines if line.startswith("!")]


def run(args: list[str]) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(args, capture_output=True, text=True, check=False, timeout=600)
    assert result.returncode == 0, f"{args}: {result.stdout}\n{result.stderr}"
    return result


def as_exporter_user(command: list[str]) -> list[str]:
    """``command`` as uid/gid 65532, no supplementary groups, no new privileges, with the
    root filesystem remounted read-only in a private mount namespace."""
    setpriv = [
        "setpriv",
        f"--reuid={UID}",
        f"--regid={GID}",
        "--clear-groups",
        "--no-new-privs",
        "--",
    ]
    script = 'mount -o remount,bind,ro / && exec "$@"'
    namespace = ["unshare", "--mount", "--propagation", "private", "--"]
    return [*namespace, "sh", "-c", script, "sh", *setpriv, *command]


def clean_env(venv: Path) -> dict[str, str]:
    return {
        "PATH": f"{venv}/bin:/usr/bin:/bin",
        "HOME": "/nonexistent",
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",  # as the image sets it
    }


def system_interpreter() -> str:
    """A Python 3.11+ that the non-root user can execute (the dev interpreter may live under
    /root, which is closed to it), as the image's /usr/local/bin/python is."""
    for candidate in INTERPRETERS:
        if not Path(candidate).exists():
            continue
        check = "import sys; assert sys.version_info >= (3, 11)"
        probe = subprocess.run(
            as_exporter_user([candidate, "-c", check]),
            capture_output=True,
            check=False,
            timeout=60,
            env={"PATH": "/usr/bin:/bin"},
        )
        if probe.returncode == 0:
            return candidate
    raise AssertionError(f"no Python 3.11+ usable by uid {UID} among {INTERPRETERS}")


@pytest.fixture(scope="module")
def installed() -> Iterator[Installed]:
    with tempfile.TemporaryDirectory(prefix="oke-image-") as scratch:
        base = Path(scratch)
        base.chmod(0o755)
        context = base / "context"
        context.mkdir()
        for name in allowlist():
            source = ROOT / name
            if source.is_dir():
                shutil.copytree(
                    source, context / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
                )
            else:
                shutil.copy2(source, context / name)
        dist = base / "dist"
        run([sys.executable, "-m", "build", "--wheel", "--outdir", str(dist), str(context)])
        (wheel,) = dist.glob("*.whl")
        venv = base / "venv"
        run([system_interpreter(), "-m", "venv", str(venv)])
        run([str(venv / "bin" / "pip"), "install", "--quiet", "--no-input", str(wheel)])
        run([str(venv / "bin" / "python"), "-m", "pip", "uninstall", "--yes", "pip", "setuptools"])
        workdir = base / "readonly"
        workdir.mkdir(mode=0o555)
        workdir.chmod(0o555)
        yield Installed(venv=venv, workdir=workdir, wheel=wheel)


def snapshot(tree: Path) -> dict[str, tuple[int, int]]:
    return {
        str(path): (path.stat().st_mtime_ns, path.stat().st_size)
        for path in tree.rglob("*")
        if not path.is_symlink()
    }


def test_the_wheel_comes_from_the_build_context(installed: Installed) -> None:
    assert installed.wheel.name.startswith(f"openai_key_exporter-{exporter.__version__}-")
    assert installed.wheel.name.endswith("-py3-none-any.whl")
    assert not (installed.venv / "bin" / "pip").exists()  # no installer left, as in the image
    entry = installed.venv / "bin" / "openai-key-exporter"
    mode = entry.stat().st_mode
    assert mode & stat.S_IXOTH  # executable by anyone, written by root only
    assert not mode & (stat.S_IWGRP | stat.S_IWOTH)


def run_as_exporter(
    installed: Installed, program: str, *args: str
) -> subprocess.CompletedProcess[str]:
    """A program of the installed venv, run as the image's user from its read-only workdir."""
    return subprocess.run(
        as_exporter_user([str(installed.venv / "bin" / program), *args]),
        cwd=installed.workdir,
        env=clean_env(installed.venv),
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_version_runs_as_non_root_on_a_read_only_root(installed: Installed) -> None:
    result = run_as_exporter(installed, "openai-key-exporter", "--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"openai-key-exporter {exporter.__version__}"


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (loopback)
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_demo_scrape_as_non_root_on_a_read_only_root(installed: Installed) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    before = snapshot(installed.venv)
    command = [
        str(installed.venv / "bin" / "openai-key-exporter"),
        "--demo",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    process = subprocess.Popen(
        as_exporter_user(command),
        cwd=installed.workdir,
        env=clean_env(installed.venv),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + POLL_SECONDS
        status, body = 0, ""
        while time.monotonic() < deadline:
            assert process.poll() is None, process.communicate(timeout=10)
            try:
                status, body = get(f"{base}/metrics")
            except OSError:
                status = 0
            if status == 200 and "openai_api_key_info{" in body:
                break
            time.sleep(0.2)
        assert status == 200, f"no metrics within {POLL_SECONDS}s"
        assert re.search(r"^openai_up 1(\.0)?$", body, re.MULTILINE), "the demo refresh failed"
        assert "openai_api_key_age_seconds{" in body
        version = re.escape(exporter.__version__)
        build_info = rf'^openai_exporter_build_info\{{.*\bversion="{version}"'
        assert re.search(build_info, body, re.MULTILINE), "build_info of another version"
        assert get(f"{base}/healthz")[0] == 200
        assert get(f"{base}/readyz")[0] == 200
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            _, stderr = process.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            _, stderr = process.communicate(timeout=10)
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr
    assert "Read-only file system" not in stderr
    assert "Permission denied" not in stderr
    assert snapshot(installed.venv) == before  # nothing written where the code lives
    assert list(installed.workdir.iterdir()) == []


def test_the_user_really_cannot_write(installed: Installed) -> None:
    """The conditions above are real: the user can write neither its working directory nor
    the root filesystem, and has no home."""
    probe = (
        "import os, pathlib, sys\n"
        "assert os.getuid() == 65532 and os.getgid() == 65532 and os.getgroups() == []\n"
        "assert not pathlib.Path(os.environ['HOME']).exists()\n"
        f"for target in (pathlib.Path.cwd() / 'x', pathlib.Path('{WORLD_WRITABLE_PROBE}')):\n"
        "    try:\n"
        "        target.write_text('x')\n"
        "    except OSError as error:\n"
        "        print(target, error.strerror)\n"
        "    else:\n"
        "        sys.exit(f'{target} is writable')\n"
    )
    result = run_as_exporter(installed, "python", "-c", probe)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].endswith("Permission denied") or lines[0].endswith("Read-only file system")
    # /tmp is world-writable: only the read-only root keeps the user out of it.
    assert lines[1] == f"{WORLD_WRITABLE_PROBE} Read-only file system"
