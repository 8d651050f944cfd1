"""`openai-admin-api-simulator` / `python -m exporter.simulator` as a user runs it."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import aiohttp
import pytest

from exporter.simulator.cli import main

AUTH = {"Authorization": "Bearer sk-admin-test-fake"}
Simulator = Callable[..., AbstractAsyncContextManager[tuple[asyncio.subprocess.Process, str]]]


@asynccontextmanager
async def _simulator(*args: str) -> AsyncIterator[tuple[asyncio.subprocess.Process, str]]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "exporter.simulator",
        "--listen",
        "127.0.0.1:0",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), timeout=20)
        yield process, line.decode().strip()
    finally:
        if process.returncode is None:
            process.kill()
        await process.communicate()


@pytest.fixture
def simulator() -> Simulator:
    return _simulator


async def _get(url: str, headers: dict[str, str] = AUTH) -> tuple[int, dict[str, object]]:
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as response:
        return response.status, await response.json()


async def test_serves_the_requested_organization_and_stops_on_sigterm(
    simulator: Simulator,
) -> None:
    async with simulator(
        "--projects", "4", "--keys-per-project", "3", "--archived-fraction", "0"
    ) as (
        process,
        base_url,
    ):
        assert base_url.startswith("http://127.0.0.1:")
        assert base_url.endswith("/v1")
        status, body = await _get(f"{base_url}/organization/projects?limit=100")
        assert status == 200
        projects = body["data"]
        assert isinstance(projects, list)
        assert len(projects) == 4
        status, keys = await _get(
            f"{base_url}/organization/projects/{projects[0]['id']}/api_keys"
            "?owner_project_access=any"
        )
        assert status == 200
        assert isinstance(keys["data"], list)
        assert len(keys["data"]) == 3

        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), timeout=10) == 0


async def test_admin_key_and_fault_flags(simulator: Simulator) -> None:
    args = ("--admin-key", "sk-admin-test-fake", "--fault-rate", "1", "--faults", "503")
    async with simulator(*args) as (process, base_url):
        status, _ = await _get(
            f"{base_url}/organization/projects",
            headers={"Authorization": "Bearer sk-admin-test-other"},
        )
        assert status == 401
        status, body = await _get(f"{base_url}/organization/projects")
        assert status == 503
        assert body["error"] is not None
        process.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(process.wait(), timeout=10) == 0


async def test_resource_counts_and_fault_endpoint_flags(simulator: Simulator) -> None:
    args = (
        "--admin-keys", "2", "--invites", "3", "--certificates", "0",
        "--fault-rate", "1", "--faults", "500", "--fault-endpoint", "users",
    )  # fmt: skip
    async with simulator(*args) as (process, base_url):
        status, body = await _get(f"{base_url}/organization/admin_api_keys")
        assert status == 200
        assert isinstance(body["data"], list)
        assert len(body["data"]) == 2
        status, body = await _get(f"{base_url}/organization/invites")
        assert status == 200
        assert isinstance(body["data"], list)
        assert len(body["data"]) == 3
        status, body = await _get(f"{base_url}/organization/certificates")
        assert (status, body["data"]) == (200, [])
        status, _ = await _get(f"{base_url}/organization/users")
        assert status == 500
        status, _ = await _get(f"{base_url}/organization/projects")
        assert status == 200
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), timeout=10) == 0


async def test_usage_flags(simulator: Simulator) -> None:
    args = ("--active-keys", "3", "--models-per-source", "1", "--cost-amounts-as-strings", "always")
    now = int(time.time())
    async with simulator(*args) as (process, base_url):
        status, body = await _get(
            f"{base_url}/organization/usage/embeddings?start_time={now - 3 * 86_400}"
            "&group_by=api_key_id"
        )
        assert status == 200
        data = body["data"]
        assert isinstance(data, list)
        keys = {r["api_key_id"] for b in data for r in b["results"]} - {None}
        assert len(keys) == 3
        status, body = await _get(f"{base_url}/organization/costs?start_time={now - 86_400}")
        data = body["data"]
        assert isinstance(data, list)
        values = [r["amount"]["value"] for b in data for r in b["results"]]
        assert values
        assert all(isinstance(v, str) for v in values)
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), timeout=10) == 0


async def test_audit_flags(simulator: Simulator) -> None:
    async with simulator("--no-audit-logging") as (process, base_url):
        status, body = await _get(f"{base_url}/organization/audit_logs")
        assert status == 403
        assert body["error"] == {
            "message": "Audit logging is not enabled for this organization.",
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        }
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), timeout=10) == 0
    for flag, listed in (("--audit-history", True), ("--no-audit-history", False)):
        async with simulator(flag) as (process, base_url):
            status, body = await _get(f"{base_url}/organization/audit_logs")
            assert status == 200
            assert bool(body["data"]) is listed
            process.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(process.wait(), timeout=10) == 0


@pytest.mark.parametrize(
    "argv",
    [
        ["--cost-amounts-as-strings", "often"],
        ["--usage-lateness", "-5"],
        ["--fault-endpoint", "everything"],
        ["--admin-keys", "-2"],
        ["--listen", "nowhere"],
        ["--listen", "127.0.0.1:70000"],
        ["--projects", "-1"],
        ["--archived-fraction", "1.5"],
        ["--latency", "soon"],
        ["--faults", "teapot"],
        ["--faults", "200"],
    ],
)
def test_bad_flags_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert "openai-admin-api-simulator: error: argument" in capsys.readouterr().err
