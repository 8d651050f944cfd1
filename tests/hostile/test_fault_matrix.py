"""The fault matrix: every upstream fault, on the project list and on one project's keys.

For each: /metrics answers 200 within the scrape timeout, the last good data stays,
``openai_up`` is 0 while the fault lasts, the error is counted under its fixed reason
and logged once per failed refresh without the key, retries are bounded and honour
``Retry-After``, and the exporter recovers by itself at the next refresh.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Literal

import pytest
from aiohttp.test_utils import TestClient

from exporter.simulator.faults import Fault
from exporter.web.app import CACHE
from tests.hostile.cases import (
    CANARY_MARK,
    FAULT_CASES,
    MAX_RETRIES,
    RETRY_INTERVAL,
    TTL,
    FaultCase,
    app_of,
    hostile_settings,
    inventory_of,
    key_ids,
    seed_organization,
    settle,
)
from tests.support import (
    SCRAPE_TIMEOUT,
    ExporterFactory,
    FakeTime,
    Samples,
    Simulation,
    sample,
    scrape,
    scrape_text,
)

Target = Literal["projects", "api_keys"]
# Generous: the scrape is answered from what the cache holds once its budget is spent.
ANSWER_BOUND = SCRAPE_TIMEOUT + 20.0


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def _requests_sent(samples: Samples, endpoint: str) -> float:
    return sum(
        value
        for (name, labels), value in samples.items()
        if name == "openai_exporter_api_requests_total" and ("endpoint", endpoint) in labels
    )


def _check_backoff(sleeps: list[float], case: FaultCase) -> None:
    if not case.retried:
        assert sleeps == [], "a fault that retrying cannot fix is not retried"
        return
    assert len(sleeps) == MAX_RETRIES
    if case.waits is not None:
        assert sleeps == [case.waits] * MAX_RETRIES, "the server's Retry-After is honoured"
        return
    for number, wait in enumerate(sleeps):
        ceiling = min(8.0, 0.5 * 2**number)
        assert 0.75 * ceiling <= wait <= ceiling, sleeps


@pytest.mark.parametrize("target", ["projects", "api_keys"])
@pytest.mark.parametrize("case", FAULT_CASES, ids=[case.id for case in FAULT_CASES])
async def test_fault_keeps_last_good_data_counts_it_and_recovers(
    case: FaultCase,
    target: Target,
    simulation: Simulation,
    start_exporter: ExporterFactory,
    fake_time: FakeTime,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    ids = seed_organization(simulation)
    client: TestClient[Any, Any] = await start_exporter(**hostile_settings())
    good = await scrape(client)
    assert sample(good, "openai_up") == 1
    assert len(key_ids(good)) == simulation.org.key_count()
    assert _warnings(caplog) == []

    project_id = ids["big"] if target == "api_keys" else None
    simulation.state.faults.add(case.fault, endpoint=target, project_id=project_id, times=None)
    before = _requests_sent(good, target)
    fake_time.sleeps.clear()
    fake_time.monotonic_now += TTL + 1

    # Two refreshes under the fault: the first after the TTL, the next after the
    # retry interval; both keep what was good and say so.
    for refresh in (1, 2):
        await asyncio.wait_for(scrape_text(client), ANSWER_BOUND)
        await settle(client)
        served = await scrape(client)
        assert inventory_of(served) == inventory_of(good), "no key or project may drop out"
        assert sample(served, "openai_up") == 0
        assert (
            sample(
                served,
                "openai_exporter_refresh_errors_total",
                collector="api_keys",
                reason=case.reason,
            )
            == refresh
        )
        result = "partial" if target == "api_keys" else "failure"
        assert (
            sample(served, "openai_exporter_refreshes_total", collector="api_keys", result=result)
            == refresh
        )
        assert (
            sample(
                served, "openai_exporter_refreshes_total", collector="api_keys", result="success"
            )
            == 1
        )

        # Counted by the exporter itself: a request the simulator never finished counts too.
        sent = _requests_sent(served, target) - before
        others = 2 if target == "api_keys" else 0  # the two healthy projects' listings
        assert sent == case.requests_per_failure() + others, "retries stay within their bound"
        _check_backoff(fake_time.sleeps, case)

        warnings = _warnings(caplog)
        assert len(warnings) == 1, warnings  # once, not once per retry
        assert warnings[0].startswith(f"{case.reason}: listing {target}")
        if target == "api_keys":
            assert ids["big"] in warnings[0], "the line names the project"
        caplog.clear()
        before = _requests_sent(served, target)
        fake_time.sleeps.clear()
        fake_time.monotonic_now += RETRY_INTERVAL + 1

    for path in ("/healthz", "/readyz", "/"):
        response = await client.get(path)
        assert response.status == 200, path
        assert CANARY_MARK not in await response.text()

    simulation.state.faults.clear()
    recovered = await scrape(client)
    assert sample(recovered, "openai_up") == 1
    assert inventory_of(recovered) == inventory_of(good)
    assert (
        sample(recovered, "openai_exporter_refreshes_total", collector="api_keys", result="success")
        == 2
    )
    assert _warnings(caplog) == []
    assert CANARY_MARK not in caplog.text


async def test_a_scrape_during_a_hanging_refresh_is_answered_from_the_last_snapshot(
    simulation: Simulation, start_exporter: ExporterFactory, fake_time: FakeTime
) -> None:
    """The refresh outlives the scrape timeout: the scrape does not wait for it."""
    seed_organization(simulation)
    client = await start_exporter(**{**hostile_settings(), "openai_request_timeout": 30.0})
    good = await scrape(client)
    simulation.state.faults.add(Fault("slow", delay=60.0), endpoint="projects")
    fake_time.monotonic_now += TTL + 1
    served = await asyncio.wait_for(scrape(client, budget=1.0), ANSWER_BOUND)
    assert inventory_of(served) == inventory_of(good)
    caches = app_of(client)[CACHE].caches
    assert any(cache.refreshing for cache in caches), "the refresh goes on behind the scrape"
    assert (await client.get("/healthz")).status == 200


async def test_a_project_deleted_mid_refresh_keeps_its_keys_until_the_next_refresh(
    simulation: Simulation,
    start_exporter: ExporterFactory,
    fake_time: FakeTime,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Listed in the project page, gone by the time its keys are asked for: a 404."""
    ids = seed_organization(simulation)
    client = await start_exporter(**hostile_settings())
    good = await scrape(client)
    doomed = ids["other"]
    # Hold the doomed project's key listing long enough to delete the project under it.
    simulation.state.faults.add(
        Fault("slow", delay=0.2), endpoint="api_keys", project_id=doomed, times=1
    )
    fake_time.monotonic_now += TTL + 1
    listed = simulation.state.request_count("projects")
    refresh = app_of(client)[CACHE].start_refresh()
    for _ in range(500):  # until the project page has been served
        if simulation.state.request_count("projects") > listed:
            break
        await asyncio.sleep(0.01)
    simulation.org.delete_project(doomed)
    await asyncio.gather(*refresh)

    served = await scrape(client)
    [line] = _warnings(caplog)
    assert line.startswith(f"client_error: listing api_keys of {doomed} failed (HTTP 404)")
    assert inventory_of(served) == inventory_of(good), "one refresh's 404 drops nothing"
    assert sample(served, "openai_up") == 0
    assert (
        sample(
            served,
            "openai_exporter_refresh_errors_total",
            collector="api_keys",
            reason="client_error",
        )
        == 1
    )
    deleted = [r for r in simulation.state.requests if doomed in r.path]
    assert [r.status for r in deleted] == [200, 404], "a 404 is not retried"

    fake_time.monotonic_now += RETRY_INTERVAL + 1
    after = await scrape(client)
    assert sample(after, "openai_up") == 1
    assert {p for p, _ in key_ids(after)} == {ids["small"], ids["big"]}
    assert sample(after, "openai_project_api_keys", project_id=doomed) is None


async def test_a_fault_before_the_first_snapshot_serves_health_metrics_only(
    simulation: Simulation, start_exporter: ExporterFactory, fake_time: FakeTime
) -> None:
    """Nothing good to keep yet: 200 with openai_up 0, readiness waits, then recovery."""
    seed_organization(simulation)
    simulation.state.faults.add(Fault("status", status=503), endpoint="projects", times=None)
    client = await start_exporter(**hostile_settings(), enabled_collectors=("api_keys",))
    served = await scrape(client)
    assert sample(served, "openai_up") == 0
    assert key_ids(served) == set()
    assert (await client.get("/readyz")).status == 503
    simulation.state.faults.clear()
    fake_time.monotonic_now += RETRY_INTERVAL + 1
    recovered = await scrape(client)
    assert sample(recovered, "openai_up") == 1
    assert len(key_ids(recovered)) == simulation.org.key_count()
    assert (await client.get("/readyz")).status == 200
