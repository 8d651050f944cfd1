"""Several organizations under hostile conditions: odd targets, fifty organizations
probed at once within the shared bound, a key file deleted while running, and a
config naming one key file twice."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp.test_utils import TestClient

from exporter.web.app import UPSTREAM, create_app
from exporter.web.units import ORGANIZATIONS_AT_FULL_SPEED
from tests.hostile.cases import MAX_RETRIES, REQUEST_TIMEOUT, app_of
from tests.organizations import fake_key, organizations_settings, write_config
from tests.process import child_environment, exporter_command
from tests.support import DAY, FakeTime, Simulation, sample, scrape, series

Client = TestClient[Any, Any]
MANY = 50


def seed(simulation: Simulation, projects: int = 5, keys: int = 3) -> None:
    now = int(time.time())
    for p in range(projects):
        project = simulation.org.add_project(f"project-{p}")
        for k in range(keys):
            simulation.org.add_key(project.id, f"key-{k}", created_at=now - DAY)


async def start(aiohttp_client: Any, fake_time: FakeTime, config: Path, **overrides: Any) -> Client:
    values: dict[str, Any] = {
        "openai_max_retries": MAX_RETRIES,
        "openai_request_timeout": REQUEST_TIMEOUT,
        **overrides,
    }
    settings = organizations_settings(config, **values)
    client: Client = await aiohttp_client(create_app(settings, clocks=fake_time.clocks()))
    return client


@pytest.mark.parametrize(
    "query",
    [
        "?target=a&target=a",  # the same name twice is still twice
        "?target=a&target=b",
        "?target=a&TARGET=b&target=",
    ],
)
async def test_a_target_given_twice_is_refused(
    simulation: Simulation, fake_time: FakeTime, aiohttp_client: Any, tmp_path: Path, query: str
) -> None:
    client = await start(
        aiohttp_client, fake_time, write_config(tmp_path, {"a": simulation.base_url})
    )
    response = await client.get("/probe" + query)
    assert response.status == 400
    assert (await response.text()).startswith("target given 2 times")


@pytest.mark.parametrize("length", [64, 4_000])
async def test_a_very_long_target_is_refused_without_echo(
    simulation: Simulation, fake_time: FakeTime, aiohttp_client: Any, tmp_path: Path, length: int
) -> None:
    client = await start(
        aiohttp_client, fake_time, write_config(tmp_path, {"a": simulation.base_url})
    )
    target = "a" * length
    response = await client.get(f"/probe?target={target}")
    assert response.status == 400
    body = await response.text()
    assert len(body) < 100
    assert target not in body
    assert (await client.get("/probe?target=a")).status == 200, "still serving"


async def test_fifty_organizations_probed_at_once_stay_within_the_shared_bound(
    simulation: Simulation, fake_time: FakeTime, aiohttp_client: Any, tmp_path: Path
) -> None:
    seed(simulation)
    simulation.state.faults.latency = 0.05  # refreshes overlap: requests pile up
    names = [f"org-{n:02d}" for n in range(MANY)]
    config = write_config(tmp_path, dict.fromkeys(names, simulation.base_url))
    # Simulator and exporter share this process's loop: room for its load.
    client = await start(aiohttp_client, fake_time, config, openai_request_timeout=30.0)
    bound = app_of(client)[UPSTREAM].bound
    # api_keys: its project pages and 8 key listings; four single listings; plus one.
    per_organization = 1 + (1 + 8) + 4
    assert bound == ORGANIZATIONS_AT_FULL_SPEED * per_organization

    answers = await asyncio.gather(*(scrape(client, f"/probe?target={name}") for name in names))
    for samples in answers:
        assert sample(samples, "openai_up") == 1
        assert len(series(samples, "openai_api_key_info")) == 15
    assert per_organization < simulation.state.most_in_flight <= bound
    own = await scrape(client, "/metrics")
    assert len(series(own, "openai_exporter_organization_up")) == MANY


async def test_a_key_file_deleted_while_running_fails_only_its_organization(
    simulation: Simulation,
    fake_time: FakeTime,
    aiohttp_client: Any,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    seed(simulation, projects=2)
    config = write_config(tmp_path, dict.fromkeys(("a", "b", "c"), simulation.base_url))
    client = await start(aiohttp_client, fake_time, config, enabled_collectors=("api_keys",))
    before = {name: await scrape(client, f"/probe?target={name}") for name in "abc"}
    assert all(sample(samples, "openai_up") == 1 for samples in before.values())

    caplog.clear()
    (tmp_path / "b.key").unlink()
    fake_time.advance(3600)
    after = {name: await scrape(client, f"/probe?target={name}") for name in "abc"}
    await scrape(client, "/probe?target=b")  # within the retry interval: no new attempt
    assert sample(after["b"], "openai_up") == 0
    assert series(after["b"], "openai_api_key_info") == series(before["b"], "openai_api_key_info")
    assert sample(after["a"], "openai_up") == 1
    assert sample(after["c"], "openai_up") == 1
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(lines) == 1, lines
    assert "organization b" in lines[0]
    assert str(tmp_path / "b.key") in lines[0]
    assert fake_key("b") not in caplog.text


async def test_a_config_naming_one_key_file_twice_is_refused_at_start(tmp_path: Path) -> None:
    key_file = tmp_path / "shared.key"
    key_file.write_text(fake_key("shared") + "\n")
    config = tmp_path / "organizations.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "organizations": [
                    {"name": "prod", "admin_key_file": str(key_file)},
                    {"name": "staging", "admin_key_file": str(key_file)},
                ]
            }
        )
    )
    process = await asyncio.create_subprocess_exec(
        *exporter_command(),
        f"--config.file={config}",
        env=child_environment(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 2
    assert "'prod' and 'staging' name the same admin_key_file" in stderr.decode()
    assert fake_key("shared") not in stderr.decode()
