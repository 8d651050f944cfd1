"""Several organizations from one exporter (``--config.file``): each its own target at
``/probe?target=``, against one in-process simulator per organization."""

from __future__ import annotations

import asyncio
import gzip
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from exporter.simulator.app import SimulatorState, serve_simulator
from exporter.simulator.faults import Fault
from exporter.simulator.organization import Organization
from exporter.web.app import ORGANIZATIONS, create_app
from tests.hostile.cases import app_of
from tests.organizations import fake_key, organizations_settings, write_config
from tests.support import (
    DAY,
    FakeTime,
    Samples,
    Simulation,
    parse_samples,
    sample,
    scrape,
    series,
)

Client = TestClient[Any, Any]


def seed(simulation: Simulation, projects: int, keys: int) -> None:
    now = int(time.time())
    for p in range(projects):
        project = simulation.org.add_project(f"project-{p}")
        for k in range(keys):
            simulation.org.add_key(project.id, f"key-{k}", created_at=now - (k + 1) * DAY)


@pytest.fixture
async def second() -> AsyncIterator[Simulation]:
    state = SimulatorState(org=Organization(seed=2))
    async with serve_simulator(state) as base_url:
        yield Simulation(state, base_url)


@pytest.fixture
async def two(
    simulation: Simulation,
    second: Simulation,
    fake_time: FakeTime,
    aiohttp_client: Any,
    tmp_path: Path,
) -> Client:
    """prod (2 projects of 3 keys) and staging (1 project of 1 key), each its own API."""
    seed(simulation, 2, 3)
    seed(second, 1, 1)
    simulation.state.accepted_admin_keys = {fake_key("prod")}
    second.state.accepted_admin_keys = {fake_key("staging")}
    config = write_config(tmp_path, {"prod": simulation.base_url, "staging": second.base_url})
    client: Client = await aiohttp_client(
        create_app(organizations_settings(config), clocks=fake_time.clocks())
    )
    return client


def project_ids(samples: Samples) -> set[str]:
    return {dict(labels)["project_id"] for labels in series(samples, "openai_project_api_keys")}


async def test_each_probe_serves_its_own_organization(
    two: Client, simulation: Simulation, second: Simulation
) -> None:
    prod = await scrape(two, "/probe?target=prod")
    staging = await scrape(two, "/probe?target=staging")
    assert project_ids(prod) == {p.id for p in simulation.org.projects(include_archived=False)}
    assert project_ids(staging) == {p.id for p in second.org.projects(include_archived=False)}
    assert len(series(prod, "openai_api_key_info")) == 6
    assert len(series(staging, "openai_api_key_info")) == 1
    for samples in (prod, staging):
        assert sample(samples, "openai_up") == 1
        assert sample(samples, "openai_exporter_collector_success", collector="api_keys") == 1
    # Each organization's requests went to its own API only, with its own key.
    assert simulation.requests_to("projects")
    assert second.requests_to("projects")


async def test_a_failing_organization_keeps_its_data_and_leaves_the_other_alone(
    two: Client, second: Simulation, fake_time: FakeTime
) -> None:
    good = await scrape(two, "/probe?target=staging")
    await scrape(two, "/probe?target=prod")
    second.state.faults.add(Fault("status", status=500), endpoint="projects", times=None)
    fake_time.advance(3600)
    failed = await scrape(two, "/probe?target=staging")
    prod = await scrape(two, "/probe?target=prod")
    assert sample(failed, "openai_up") == 0
    assert sample(failed, "openai_exporter_collector_success", collector="api_keys") == 0
    assert series(failed, "openai_api_key_info") == series(good, "openai_api_key_info")
    assert sample(prod, "openai_up") == 1
    assert (
        sample(
            prod,
            "openai_exporter_refresh_errors_total",
            collector="api_keys",
            reason="server_error",
        )
        == 0
    )


async def test_a_revoked_key_fails_only_its_organization(
    two: Client, simulation: Simulation, fake_time: FakeTime
) -> None:
    await scrape(two, "/probe?target=prod")
    simulation.state.accepted_admin_keys = {"sk-admin-test-fake-rotated"}
    fake_time.advance(3600)
    prod = await scrape(two, "/probe?target=prod")
    staging = await scrape(two, "/probe?target=staging")
    assert sample(prod, "openai_up") == 0
    assert (
        sample(prod, "openai_exporter_refresh_errors_total", collector="api_keys", reason="auth")
        == 1
    )
    assert len(series(prod, "openai_api_key_info")) == 6  # the last good data
    assert sample(staging, "openai_up") == 1


async def test_a_slow_organization_does_not_delay_the_other(
    two: Client, second: Simulation
) -> None:
    second.state.faults.add(Fault("slow", delay=3.0), endpoint="projects", times=None)
    loop = asyncio.get_running_loop()
    started = loop.time()
    prod = await scrape(two, "/probe?target=prod")
    assert sample(prod, "openai_up") == 1
    # Answered while staging's first refresh is still waiting on its slow API.
    assert loop.time() - started < 3.0
    units = app_of(two)[ORGANIZATIONS]
    assert any(cache.refreshing for cache in units["staging"].cache.caches)
    # And staging's probe waits only its own scrape budget, then serves its health.
    staging = await scrape(two, "/probe?target=staging", budget=1.0)
    assert sample(staging, "openai_up") == 0


async def test_probes_negotiate_formats_and_gzip_as_metrics_does(two: Client) -> None:
    url = "/probe?target=prod"
    response = await two.get(url, headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert response.headers["Content-Type"].startswith("application/openmetrics-text")
    body = await response.text()
    assert body.endswith("# EOF\n")
    assert "openai_exporter_refreshes_total" in body
    plain = await two.get(url, headers={"Accept": "text/plain"})
    assert plain.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    zipped = await two.get(url, headers={"Accept-Encoding": "gzip"}, auto_decompress=False)
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert "openai_project_api_keys{" in gzip.decompress(await zipped.read()).decode()
    head = await two.head(url)
    assert head.status == 200


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("", "missing target parameter"),
        ("?target=prod&target=staging", "target given 2 times"),
        ("?target=nope", "unknown target 'nope'"),
        ("?target=" + "a" * 64, "target is longer than a name can be (63)"),
        ("?target=%3Cscript%3E", "unknown target (not a valid name)"),
        ("?target=", "unknown target (not a valid name)"),
    ],
)
async def test_a_bad_target_is_a_400_with_one_line(two: Client, query: str, reason: str) -> None:
    response = await two.get("/probe" + query)
    assert response.status == 400
    body = await response.text()
    assert body.startswith(reason)
    assert body.count("\n") == 1
    assert "<script>" not in body
    assert "a" * 64 not in body


async def test_probe_without_a_config_file_is_a_400(
    simulation: Simulation, start_exporter: Any
) -> None:
    client = await start_exporter()
    response = await client.get("/probe?target=prod")
    assert response.status == 400
    assert await response.text() == (
        "no --config.file: this exporter serves its one organization at /metrics\n"
    )


async def test_metrics_serves_the_exporters_own_and_one_up_per_organization(
    two: Client, second: Simulation, fake_time: FakeTime
) -> None:
    second.state.faults.add(Fault("status", status=500), endpoint="projects", times=None)
    await scrape(two, "/probe?target=prod")
    await scrape(two, "/probe?target=staging")
    own = await scrape(two, "/metrics")
    assert {name for name, _ in own} == {
        "openai_exporter_organization_up",
        "openai_exporter_build_info",
    }
    assert sample(own, "openai_exporter_organization_up", organization="prod") == 1
    assert sample(own, "openai_exporter_organization_up", organization="staging") == 0
    zipped = await two.get("/metrics", headers={"Accept-Encoding": "gzip"}, auto_decompress=False)
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert parse_samples(gzip.decompress(await zipped.read()).decode()) == own
    openmetrics = await two.get(
        "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
    )
    assert (await openmetrics.text()).endswith("# EOF\n")


async def test_the_landing_page_lists_each_organization_with_its_probe(
    two: Client, second: Simulation
) -> None:
    second.state.faults.add(Fault("status", status=500), endpoint="projects", times=None)
    await scrape(two, "/probe?target=prod")
    await scrape(two, "/probe?target=staging")
    page = await (await two.get("/")).text()
    assert '<a href="/probe?target=prod">prod</a></th><td>up</td>' in page
    assert '<a href="/probe?target=staging">staging</a></th><td>down</td>' in page
    assert "server_error: listing projects failed (HTTP 500)" in page
    assert "Organizations: 2" in page
    assert "Enabled collectors" not in page


async def test_ready_once_every_organization_has_tried_and_one_has_data(
    two: Client, second: Simulation
) -> None:
    second.state.accepted_admin_keys = {"sk-admin-test-fake-revoked"}
    await scrape(two, "/probe?target=staging")
    await scrape(two, "/probe?target=prod")
    assert (await two.get("/readyz")).status == 200
