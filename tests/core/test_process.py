"""The real command, as a user runs it: demo mode, promtool, SIGTERM, and no leaked key."""

import asyncio
import subprocess
import time

import aiohttp

from exporter.simulator.faults import Fault
from tests.process import child_environment, run_exporter
from tests.support import DAY, Simulation, assert_promtool_accepts

CANARY = "sk-admin-CANARY-process"


async def test_demo_mode_serves_metrics_that_promtool_accepts() -> None:
    async with run_exporter("--demo", "--collector.service_accounts") as exporter:
        await exporter.wait_until_ready()
        async with aiohttp.ClientSession() as session:
            async with session.get(exporter.url + "/metrics") as response:
                assert response.status == 200
                text = await response.text()
            async with session.get(exporter.url + "/") as response:
                assert "Demo mode" in await response.text()
        for family in (
            "openai_api_key_info{",
            "openai_admin_api_key_info{",
            'openai_exporter_admin_api_key_info{admin_api_key_id="key_demoExporterSelf"} 1',
            "openai_user_info{",
            "openai_api_key_owner_in_organization{",
            "openai_invite_info{",
            "openai_certificate_info{",
            "openai_service_account_info{",
        ):
            assert family in text
        assert "openai_up 1.0" in text
        assert_promtool_accepts(text)
        assert await exporter.stop() == 0
    assert "demo mode" in exporter.stderr
    assert (
        "collectors enabled: api_keys, admin_api_keys, users, invites, certificates, "
        "service_accounts" in exporter.stderr
    )


async def test_sigterm_lets_a_scrape_in_flight_finish_then_exits_0(simulation: Simulation) -> None:
    project = simulation.org.add_project("web")
    simulation.org.add_key(project.id, "k", created_at=int(time.time()) - DAY)
    simulation.state.faults.add(Fault("slow", delay=1.0), endpoint="projects")
    env = {"OPENAI_ADMIN_KEY": "sk-admin-test-fake", "OPENAI_BASE_URL": simulation.base_url}
    async with run_exporter(env=env) as exporter:
        async with aiohttp.ClientSession() as session:
            for _ in range(200):  # bounded wait for the port to open
                try:
                    async with session.get(exporter.url + "/healthz") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.05)
            scrape = asyncio.create_task(
                session.get(
                    exporter.url + "/metrics",
                    headers={"X-Prometheus-Scrape-Timeout-Seconds": "10"},
                )
            )
            await asyncio.sleep(0.3)  # the scrape is now waiting on the slow refresh
            exporter.process.terminate()
            response = await scrape
            assert response.status == 200
            assert "openai_api_key_info{" in await response.text()
        assert await asyncio.wait_for(exporter.process.wait(), timeout=10) == 0


async def test_the_admin_key_appears_nowhere(simulation: Simulation) -> None:
    """A canary key through debug logs, refusals, faults, every page and error page."""
    project = simulation.org.add_project("web")
    simulation.org.add_key(project.id, "k", created_at=int(time.time()) - DAY)
    simulation.state.accepted_admin_keys = {"sk-admin-test-other"}  # the canary is refused
    env = {"OPENAI_ADMIN_KEY": CANARY, "OPENAI_BASE_URL": simulation.base_url}
    seen: list[str] = []
    for log_format in ("text", "json"):
        args = (
            "--log.level=debug",
            f"--log.format={log_format}",
            "--cache.ttl=1s",
            "--cache.retry-interval=1s",
            "--openai.max-retries=1",
        )
        async with run_exporter(*args, env=env) as exporter:
            async with aiohttp.ClientSession() as session:
                for path in ("/metrics", "/", "/nope", "/readyz", "/healthz", "/metrics"):
                    for _ in range(100):
                        try:
                            async with session.get(exporter.url + path) as response:
                                seen.append(await response.text())
                                seen.append(str(response.headers))
                            break
                        except aiohttp.ClientConnectionError:
                            await asyncio.sleep(0.05)
                simulation.state.accepted_admin_keys = None
                simulation.state.faults.add(Fault("status", status=500), times=None)
                await asyncio.sleep(1.1)
                async with session.get(exporter.url + "/metrics") as response:
                    seen.append(await response.text())
                simulation.state.faults.clear()
                simulation.state.accepted_admin_keys = {"sk-admin-test-other"}
            assert await exporter.stop() == 0
        seen.append(exporter.stderr)
    everything = "\n".join(seen)
    assert "Organization Administration" in everything  # the refusal was logged ...
    assert "server_error" in everything  # ... and so were the faults
    assert CANARY not in everything
    assert "CANARY" not in everything


def test_bad_configuration_never_echoes_the_key() -> None:
    import sys

    env = child_environment({"OPENAI_ADMIN_KEY": CANARY, "OPENAI_EXPORTER_CACHE_TTL": CANARY})
    result = subprocess.run(
        [sys.executable, "-m", "exporter", "--openai.concurrency", CANARY],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "--cache.ttl (OPENAI_EXPORTER_CACHE_TTL)" in result.stderr
    assert "--openai.concurrency (OPENAI_EXPORTER_OPENAI_CONCURRENCY)" in result.stderr
    assert "CANARY" not in result.stdout + result.stderr
