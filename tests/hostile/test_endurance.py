"""Many refresh cycles under a random mix of every fault, in accelerated time.

Whatever the mix does, every scrape is a 200 with the whole organization, the
counters add up to the log lines, and nothing piles up: no tasks, connections or
objects left behind by the faults.
"""

from __future__ import annotations

import dataclasses
import gc
from typing import Literal

import pytest

from exporter.collectors.api_keys import ApiProjectKey
from exporter.collectors.projects import ApiProject
from exporter.simulator.faults import Fault
from tests.hostile.cases import (
    CANARY_MARK,
    FAULT_CASES,
    RETRY_INTERVAL,
    TTL,
    hostile_settings,
    inventory_of,
    key_ids,
    seed_organization,
    settle,
)
from tests.hostile.leaks import Footprint, MessageLog, captured_lines, footprint, quiesce
from tests.support import (
    ExporterFactory,
    FakeTime,
    Samples,
    Simulation,
    sample,
    scrape,
    scrape_text,
)

CYCLES = 40
FAULT_RATE = 0.12  # of upstream requests; a refresh makes five, so about half fail
# The exporter's connector keeps up to concurrency + 2 connections alive; the
# simulator holds the other end of each. Anything beyond that (and some slack) leaks.
FD_BOUND = 2 * (8 + 2) + 6
# Live objects may differ a little from cycle to cycle (the last refresh's errors,
# keep-alive timers); a leak of one page or one response per fault is far more.
OBJECT_BOUND = 1_000


def _mix() -> list[Fault]:
    faults = []
    for case in FAULT_CASES:
        fault = case.fault
        if fault.kind == "slow":
            fault = dataclasses.replace(fault, delay=0.5)  # still twice the request timeout
        if fault.retry_after == "86400":
            continue  # same path as the other Retry-After cases, only slower to read
        faults.append(fault)
    return faults


async def test_random_faults_over_many_refreshes_lose_nothing_and_leak_nothing(
    simulation: Simulation,
    start_exporter: ExporterFactory,
    fake_time: FakeTime,
) -> None:
    with captured_lines("exporter", "aiohttp") as log:
        await _endure(simulation, start_exporter, fake_time, log)


async def _endure(
    simulation: Simulation,
    start_exporter: ExporterFactory,
    fake_time: FakeTime,
    log: MessageLog,
) -> None:
    seed_organization(simulation)
    everything = {
        (project.id, key.id)
        for project in simulation.org.projects()
        for key in simulation.org.keys(project.id)
    }
    client = await start_exporter(**hostile_settings())
    good = await scrape(client)
    assert key_ids(good) == everything
    simulation.state.faults.set_random(FAULT_RATE, _mix(), seed=20240326)

    start: Footprint | None = None
    successes = failures = 0
    served: Samples = {}
    for cycle in range(CYCLES):
        if cycle == 5:  # warmed up: connections open, every fault path taken once
            start = footprint()
        simulation.state.requests.clear()  # the simulator's own log is not the exporter's
        fake_time.monotonic_now += TTL + 1
        await scrape_text(client)
        await settle(client)
        served = await scrape(client)
        assert inventory_of(served) == inventory_of(good), f"cycle {cycle}"
        total_ok = sample(
            served, "openai_exporter_refreshes_total", collector="api_keys", result="success"
        )
        if sample(served, "openai_exporter_collector_success", collector="api_keys") == 1:
            successes += 1
            assert total_ok == successes + 1
        else:
            failures += 1

    # Measured with the same locals alive as at the start: a scrape's samples and the
    # snapshot of the organization.
    assert start is not None
    await quiesce(start.tasks)
    growth = footprint().growth_since(start)
    assert growth.tasks <= 0, growth
    assert growth.fds <= FD_BOUND, growth
    assert growth.objects <= OBJECT_BOUND, growth

    errors = sum(
        value
        for (name, _), value in served.items()
        if name == "openai_exporter_refresh_errors_total"
    )
    warnings = log.warnings()
    assert errors == len(warnings), "every counted error is logged once, nothing else is"
    assert {name for name, _ in warnings} == {"exporter.collectors.runner"}
    assert failures >= CYCLES // 4, "the mix must actually hurt"
    assert successes >= 1
    assert CANARY_MARK not in log.text

    simulation.state.faults.clear()
    fake_time.monotonic_now += RETRY_INTERVAL + TTL
    recovered = await scrape(client)
    assert sample(recovered, "openai_up") == 1
    assert key_ids(recovered) == everything


@pytest.mark.parametrize("target", ["projects", "api_keys"])
async def test_a_failed_refresh_does_not_keep_its_pages_alive(
    target: Literal["projects", "api_keys"],
    simulation: Simulation,
    start_exporter: ExporterFactory,
    fake_time: FakeTime,
) -> None:
    """The last report keeps its errors until the next refresh, but not their frames:
    an oversized page of a thousand projects or keys is garbage once refused."""
    ids = seed_organization(simulation)
    client = await start_exporter(**hostile_settings())
    await scrape_text(client)
    project_id = ids["big"] if target == "api_keys" else None
    simulation.state.faults.add(Fault("oversized_page"), endpoint=target, project_id=project_id)
    fake_time.monotonic_now += TTL + 1
    served = await scrape(client)
    assert (
        sample(
            served,
            "openai_exporter_refresh_errors_total",
            collector="api_keys",
            reason="bad_response",
        )
        == 1
    )
    gc.collect()
    alive = sum(isinstance(thing, ApiProject | ApiProjectKey) for thing in gc.get_objects())
    assert alive == 0
