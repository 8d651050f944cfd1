"""The real command under hostile conditions: TLS and basic auth from a web config
file, a canary admin key in a key file, random upstream faults, debug logging in
JSON, malformed requests, and SIGTERM at the end. The key appears nowhere."""

from __future__ import annotations

import asyncio
import base64
import socket
import ssl
import subprocess
import sys
from pathlib import Path

import aiohttp

from tests.hostile.cases import CANARY, CANARY_MARK, FAULT_CASES, seed_organization
from tests.hostile.pki import (
    PROMETHEUS_HASH,
    PROMETHEUS_PASSWORD,
    Pki,
    tls_section,
    write_web_config,
)
from tests.process import child_environment, free_port, run_exporter
from tests.support import Simulation

GOOD_AUTH = "Basic " + base64.b64encode(f"prometheus:{PROMETHEUS_PASSWORD}".encode()).decode()


async def _raw(port: int, data: bytes, context: ssl.SSLContext) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
    writer.write(data)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(200), timeout=30)
    writer.close()
    return answer


async def test_protected_exporter_under_faults_leaks_nothing_and_stops_cleanly(
    simulation: Simulation, tmp_path: Path
) -> None:
    seed_organization(simulation)
    pki = Pki.create(tmp_path)
    web_config = write_web_config(
        tmp_path,
        {"tls_server_config": tls_section(), "basic_auth_users": {"prometheus": PROMETHEUS_HASH}},
    )
    key_file = tmp_path / "admin-key"
    key_file.write_text(CANARY + "\n")
    simulation.state.accepted_admin_keys = {CANARY}
    simulation.state.faults.set_random(0.3, [case.fault for case in FAULT_CASES], seed=6)
    port = free_port()
    env = {"OPENAI_ADMIN_KEY_FILE": str(key_file), "OPENAI_BASE_URL": simulation.base_url}
    args = (
        f"--web.config.file={web_config}",
        "--log.level=debug",
        "--log.format=json",
        "--cache.ttl=1s",
        "--cache.retry-interval=1s",
        "--openai.max-retries=1",
        "--openai.request-timeout=0.5s",
    )
    client_tls = pki.client_context()
    seen: list[str] = []
    async with run_exporter(*args, env=env, port=port) as exporter:
        url = exporter.url.replace("http://", "https://")
        async with aiohttp.ClientSession() as session:
            for _ in range(200):  # until it listens
                try:
                    async with session.get(url + "/healthz", ssl=client_tls) as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.05)
            statuses = []
            for round_ in range(6):
                for path, headers in (
                    ("/metrics", {"Authorization": GOOD_AUTH}),
                    ("/metrics", {}),
                    ("/", {"Authorization": GOOD_AUTH}),
                    ("/nope", {"Authorization": GOOD_AUTH}),
                    ("/metrics", {"Authorization": f"Bearer {CANARY}"}),
                    ("/readyz", {}),
                ):
                    async with session.get(url + path, ssl=client_tls, headers=headers) as response:
                        statuses.append((path, bool(headers), response.status))
                        seen.append(await response.text())
                        seen.append(str(response.headers))
                await asyncio.sleep(0.4 if round_ < 5 else 0)
            # Malformed requests carrying the key, over TLS: a 400, and no log of the bytes.
            # (aiohttp's 400 quotes the offending line back to the client that sent it:
            # its own bytes, not a secret of the exporter's, so the answer is not kept.)
            for data in (
                f"GET / HTTP/1.1\r\nAuthorization: Bearer {CANARY}\x00\r\n\r\n".encode(),
                f"GET /{CANARY} HTTP/9.9\r\n\r\n".encode(),
            ):
                answer = await _raw(port, data, client_tls)
                assert answer.split(b" ", 2)[1] == b"400", answer
        assert await exporter.stop() == 0
    output = exporter.stderr
    assert ("/metrics", True, 200) in statuses
    good_scrapes = [status for path, auth, status in statuses[::6] if path == "/metrics"]
    assert good_scrapes == [200] * 6, statuses
    assert ("/metrics", False, 401) in statuses
    assert "(https, TLS, basic auth (1 users))" in output
    assert '"level": "warning"' in output, "the faults were logged"
    assert "refused a malformed request" in output
    assert "Traceback" not in output
    assert CANARY_MARK not in output
    assert CANARY_MARK not in "\n".join(seen)


def test_a_port_in_use_is_one_line_and_exit_1() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "exporter", "--demo", f"--web.listen-address=127.0.0.1:{port}"],
            env=child_environment(),
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if "ERROR" in line]
    assert len(lines) == 1, result.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in lines[0]
    assert "Traceback" not in result.stderr


def test_a_bad_web_config_stops_the_real_command_with_exit_2(tmp_path: Path) -> None:
    web_config = write_web_config(tmp_path, {"basic_auth_users": {"prometheus": CANARY}})
    env = child_environment(
        {"OPENAI_ADMIN_KEY": CANARY, "OPENAI_EXPORTER_WEB_CONFIG_FILE": str(web_config)}
    )
    result = subprocess.run(
        [sys.executable, "-m", "exporter"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert "--web.config.file (OPENAI_EXPORTER_WEB_CONFIG_FILE)" in line
    assert "not a bcrypt hash" in line
    assert CANARY_MARK not in result.stdout + result.stderr
