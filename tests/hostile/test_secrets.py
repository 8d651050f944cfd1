"""The admin key file under hostile conditions, and the canary key through every path.

A key file that vanishes, turns into a directory, holds bytes that are not text or a
key no header can carry is an ``auth`` error: counted, logged once without the key,
the last good data still served; the next good file is picked up without a restart.
(Permission bits are not among the breakages: the suite runs as root in CI, and root
reads any file; a directory and undecodable bytes take the same path, an unreadable
file.)
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from pydantic import SecretStr

from tests.hostile.cases import (
    CANARY,
    CANARY_MARK,
    FAULT_CASES,
    RETRY_INTERVAL,
    TTL,
    hostile_settings,
    inventory_of,
    seed_organization,
)
from tests.support import (
    ExporterFactory,
    FakeTime,
    Simulation,
    parse_samples,
    sample,
    scrape,
    scrape_text,
)

ROTATED = "sk-admin-CANARY-rotated"


def _replace_with_directory(path: Path) -> None:
    path.unlink()
    path.mkdir()


def _restore(path: Path, key: str) -> None:
    if path.is_dir():
        path.rmdir()
    path.write_text(key + "\n")


BREAKAGES: dict[str, Callable[[Path], object]] = {
    "deleted": Path.unlink,
    "a-directory": _replace_with_directory,
    "empty": lambda path: path.write_text("\n"),
    "not-utf8": lambda path: path.write_bytes(b"sk-admin-\xff\xfe\n"),
    "two-lines": lambda path: path.write_text(f"{CANARY}\nsecond line\n"),
    "a-nul-inside": lambda path: path.write_text(f"{CANARY}\x00tail"),
    "a-space-inside": lambda path: path.write_text(f"{CANARY} {CANARY}"),
}


@pytest.mark.parametrize("breakage", BREAKAGES, ids=list(BREAKAGES))
async def test_a_broken_key_file_is_an_auth_error_and_keeps_the_data(
    breakage: str,
    simulation: Simulation,
    start_exporter: ExporterFactory,
    fake_time: FakeTime,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    caplog.set_level(logging.DEBUG)
    seed_organization(simulation)
    key_file = tmp_path / "admin-key"
    key_file.write_text(CANARY + "\n")
    simulation.state.accepted_admin_keys = {CANARY}
    settings = {**hostile_settings(), "admin_key": None, "admin_key_file": key_file}
    client = await start_exporter(**settings)
    good = await scrape(client)
    assert sample(good, "openai_up") == 1

    BREAKAGES[breakage](key_file)
    fake_time.monotonic_now += TTL + 1
    served = await scrape(client)
    assert sample(served, "openai_up") == 0
    assert (
        sample(served, "openai_exporter_refresh_errors_total", collector="api_keys", reason="auth")
        == 1
    )
    assert inventory_of(served) == inventory_of(good)
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(lines) == 5, "one line per collector, each refused at the key"
    assert lines[0].startswith("auth: listing projects failed: ")
    assert all(str(key_file) in line for line in lines), "each line says which file"

    _restore(key_file, ROTATED)  # a new key, picked up without a restart
    simulation.state.accepted_admin_keys = {ROTATED}
    fake_time.monotonic_now += RETRY_INTERVAL + 1
    recovered = await scrape(client)
    assert sample(recovered, "openai_up") == 1
    assert CANARY_MARK not in caplog.text
    for path in ("/", "/metrics"):
        assert CANARY_MARK not in await (await client.get(path)).text()


async def test_a_kubernetes_secret_rotation_is_picked_up(
    simulation: Simulation, start_exporter: ExporterFactory, fake_time: FakeTime, tmp_path: Path
) -> None:
    """As the kubelet does it: the file is a symlink through ``..data``, which is
    swapped atomically to a new timestamped directory."""
    seed_organization(simulation)
    mount = tmp_path / "secret"
    mount.mkdir()
    (mount / "..2024_01_01").mkdir()
    (mount / "..2024_01_01" / "admin-key").write_text(CANARY)
    (mount / "..data").symlink_to("..2024_01_01")
    (mount / "admin-key").symlink_to("..data/admin-key")
    simulation.state.accepted_admin_keys = {CANARY}
    settings = {**hostile_settings(), "admin_key": None, "admin_key_file": mount / "admin-key"}
    client = await start_exporter(**settings)
    assert sample(await scrape(client), "openai_up") == 1

    (mount / "..2024_02_01").mkdir()
    (mount / "..2024_02_01" / "admin-key").write_text(ROTATED)
    (mount / "..data_tmp").symlink_to("..2024_02_01")
    (mount / "..data_tmp").replace(mount / "..data")  # rename(2): atomic
    simulation.state.accepted_admin_keys = {ROTATED}
    fake_time.monotonic_now += TTL + 1
    samples = await scrape(client)
    assert sample(samples, "openai_up") == 1
    assert (
        sample(samples, "openai_exporter_refresh_errors_total", collector="api_keys", reason="auth")
        == 0
    )


@pytest.mark.parametrize(
    ("key", "works"),
    [(CANARY + "\n", True), (f"  {CANARY}\r\n", True), (f"{CANARY}\nx", False)],
    ids=["trailing-newline", "surrounding-space", "inner-newline"],
)
async def test_a_key_from_the_environment_with_stray_whitespace(
    key: str,
    works: bool,
    simulation: Simulation,
    start_exporter: ExporterFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A Secret made with ``kubectl create secret --from-file`` ends in a newline."""
    seed_organization(simulation)
    simulation.state.accepted_admin_keys = {CANARY}
    client = await start_exporter(**{**hostile_settings(), "admin_key": SecretStr(key)})
    samples = await scrape(client)
    assert sample(samples, "openai_up") == (1 if works else 0)
    assert sample(
        samples, "openai_exporter_refresh_errors_total", collector="api_keys", reason="auth"
    ) == (0 if works else 1)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], "no crash"
    assert CANARY_MARK not in caplog.text


async def test_every_fault_leaves_no_trace_of_the_key(
    simulation: Simulation,
    start_exporter: ExporterFactory,
    fake_time: FakeTime,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The canary through every fault at once, on both endpoints, at debug level:
    not in any log line or traceback, page, error page, header or error text."""
    caplog.set_level(logging.DEBUG)
    seed_organization(simulation)
    client: TestClient[Any, Any] = await start_exporter(**hostile_settings())
    seen: list[str] = []
    for case in FAULT_CASES:
        for endpoint in ("projects", "api_keys"):
            simulation.state.faults.add(case.fault, endpoint=endpoint, times=None)
            fake_time.monotonic_now += TTL + 1
            seen.append(await scrape_text(client))
            for path in ("/", "/healthz", "/readyz", "/nope", "/metrics/"):
                response = await client.get(path)
                seen.append(await response.text())
                seen.append(str(response.headers))
            simulation.state.faults.clear()
    errors = sample(
        parse_samples(seen[0]),
        "openai_exporter_refresh_errors_total",
        collector="api_keys",
        reason="auth",
    )
    assert errors is not None
    everything = "\n".join([*seen, caplog.text])
    assert "Organization Administration" in everything  # the 401s were reported
    assert CANARY_MARK not in everything
