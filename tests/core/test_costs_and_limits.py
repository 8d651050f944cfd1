"""Costs, month-to-date spend, spend limits and alerts, and rate limits through a real
exporter on the simulator."""

from __future__ import annotations

import math
import random
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from exporter.simulator.faults import Fault
from exporter.simulator.organization import Organization
from exporter.simulator.usage import COMMITMENT_LINE_ITEM, MICRO, STORAGE_LINE_ITEM
from tests.support import DAY, ExporterFactory, FakeTime, Samples, Simulation, sample, scrape

HOUR = 3600
JANUARY_20 = 1_768_867_200 + 10 * HOUR  # 2026-01-20 10:00 UTC
JANUARY_1 = 1_767_225_600
FEBRUARY_1 = 1_769_904_000
LOOKBACK = 3 * DAY
GROUPS = ("project_id", "line_item", "api_key_id")
Costs = dict[tuple[str, str, str], float]


def build_costs(org: Organization, since: int) -> dict[str, str]:
    """Usage that costs (two keys, two models), storage of no key, a commitment of no
    project."""
    project = org.add_project("billing", id="proj_bill", created_at=since - 90 * DAY)
    other = org.add_project("other", id="proj_other", created_at=since - 90 * DAY)
    key_a = org.add_key(project.id, "a", id="key_a", created_at=since - 60 * DAY).id
    key_b = org.add_key(other.id, "b", id="key_b", created_at=since - 60 * DAY).id
    for key, project_id, model, rate in (
        (key_a, project.id, "gpt-4o", 900),
        (key_b, other.id, "gpt-4o-mini", 4000),
    ):
        org.usage.add_series(
            "completions",
            project_id=project_id,
            api_key_id=key,
            user_id=None,
            model=model,
            start=since,
            rate=rate,
            per_request={"input_tokens": 1200, "input_cached_tokens": 200, "output_tokens": 300},
        )
    org.usage.add_cost_series(
        STORAGE_LINE_ITEM, project_id=project.id, start=since, micro_per_hour=41_667
    )
    org.usage.add_cost_series(
        COMMITMENT_LINE_ITEM, project_id=None, start=since, micro_per_hour=2_000_000
    )
    return {"project": project.id, "other": other.id, "a": key_a, "b": key_b}


@pytest.fixture
def clocked(simulation: Simulation, fake_time: FakeTime) -> FakeTime:
    fake_time.wall_now = JANUARY_20
    simulation.state.clock = fake_time.wall
    return fake_time


async def start_costs(start_exporter: ExporterFactory, **overrides: Any) -> TestClient[Any, Any]:
    return await start_exporter(
        enabled_collectors=("costs",), costs_interval=HOUR, cache_ttl=HOUR, **overrides
    )


def cost_counters(samples: Samples) -> Costs:
    out: Costs = {}
    for (name, labels), value in samples.items():
        if name == "openai_cost_usd_total":
            found = dict(labels)
            out[(found["project_id"], found["api_key_id"], found["line_item"])] = value
    return out


def day_of(now: float) -> int:
    return math.floor(now / DAY) * DAY


def _add(out: dict[tuple[str, str, str], int], groups: dict[Any, Any]) -> None:
    for (project_id, line_item, api_key_id), cost in groups.items():
        key = (str(project_id or ""), str(api_key_id or ""), str(line_item or ""))
        out[key] = out.get(key, 0) + cost.micro


def expected_costs(org: Organization, first_window: int, now: int) -> Costs:
    """Final costs of the days that left the window since the first poll, plus what the
    API reports now for the days in it (micro-dollars summed exactly, then dollars)."""
    micro: dict[tuple[str, str, str], int] = {}
    window = day_of(now - LOOKBACK)
    for groups in org.usage.final_costs(first_window, window, GROUPS).values():
        _add(micro, groups)
    for groups in org.usage.reported_costs(window, now + 1, GROUPS, now=now).values():
        _add(micro, groups)
    return {key: value / MICRO for key, value in micro.items()}


def month_to_date(org: Organization, month: int, now: int) -> dict[str, float]:
    micro: dict[str, int] = {}
    for groups in org.usage.reported_costs(month, now + 1, GROUPS, now=now).values():
        for (project_id, _, _), cost in groups.items():
            micro[str(project_id or "")] = micro.get(str(project_id or ""), 0) + cost.micro
    return {project: value / MICRO for project, value in micro.items()}


async def test_costs_count_the_lookback_once_and_month_to_date_is_a_gauge_apart(
    simulation: Simulation, start_exporter: ExporterFactory, clocked: FakeTime
) -> None:
    org = simulation.org
    ids = build_costs(org, JANUARY_1 - 5 * DAY)
    client = await start_costs(start_exporter)
    first_window = day_of(clocked.wall() - LOOKBACK)
    rng = random.Random(5)
    previous: Costs = {}
    for _ in range(60):  # two and a half days of hourly polls
        simulation.state.cost_amounts_as_strings = rng.choice(["never", "sometimes", "always"])
        if rng.random() < 0.2:
            simulation.state.faults.add(Fault("status", status=502), endpoint="costs", times=5)
        current = cost_counters(await scrape(client))
        for key, value in previous.items():
            assert current[key] >= value, key
        previous = current
        simulation.state.faults.clear()
        clocked.advance(HOUR)
    samples = await scrape(client)
    now = int(clocked.wall())
    truth = expected_costs(org, first_window, now)
    counted = cost_counters(samples)
    assert counted.keys() == truth.keys()
    assert counted == {key: pytest.approx(value, rel=1e-12) for key, value in truth.items()}
    assert (ids["project"], "", STORAGE_LINE_ITEM) in counted, "a cost of no key: empty label"
    assert ("", "", COMMITMENT_LINE_ITEM) in counted, "a cost of no project: empty label"
    months = month_to_date(org, JANUARY_1, now)
    for project in (ids["project"], ids["other"]):
        assert sample(
            samples, "openai_project_spend_month_to_date_usd", project_id=project
        ) == pytest.approx(months[project], rel=1e-12)
    assert sample(samples, "openai_project_spend_month_to_date_usd", project_id="") is None
    assert sample(samples, "openai_organization_spend_month_to_date_usd") == pytest.approx(
        sum(months.values()), rel=1e-12
    )
    assert sum(months.values()) > sum(counted.values()), "the month is longer than the lookback"


async def test_string_amounts_read_like_numbers_and_the_early_month_is_read_per_project(
    simulation: Simulation, start_exporter: ExporterFactory, clocked: FakeTime
) -> None:
    build_costs(simulation.org, JANUARY_1 - 5 * DAY)
    simulation.state.cost_amounts_as_strings = "never"
    numbers = await scrape(await start_costs(start_exporter))
    simulation.state.cost_amounts_as_strings = "always"
    strings = await scrape(await start_costs(start_exporter))
    spend = {k: v for k, v in numbers.items() if "usd" in k[0]}
    assert spend
    assert spend == {k: v for k, v in strings.items() if "usd" in k[0]}
    requests = simulation.requests_to("costs")
    lookback = next(q for q in requests if "end_time" not in q)
    month = next(q for q in requests if "end_time" in q)
    window = str(day_of(JANUARY_20 - LOOKBACK))
    assert (lookback["start_time"], lookback["limit"], lookback["bucket_width"]) == (
        window,
        "4",
        "1d",
    )
    assert (month["start_time"], month["end_time"]) == (str(JANUARY_1), window)
    assert month["limit"] == "16"
    assert len(simulation.requests_to("costs")) == 4, "two pages a poll, for each exporter"


async def test_a_new_month_restarts_month_to_date_but_not_the_counter(
    simulation: Simulation, start_exporter: ExporterFactory, clocked: FakeTime
) -> None:
    org = simulation.org
    build_costs(org, JANUARY_1 - 5 * DAY)
    clocked.wall_now = FEBRUARY_1 + 2 * HOUR
    samples = await scrape(await start_costs(start_exporter))
    [query] = simulation.requests_to("costs")
    assert query["start_time"] == str(FEBRUARY_1 - 3 * DAY), (
        "one page: the lookback holds the month"
    )
    months = month_to_date(org, FEBRUARY_1, int(clocked.wall()))
    assert sample(samples, "openai_organization_spend_month_to_date_usd") == pytest.approx(
        sum(months.values()), rel=1e-12
    )
    assert sum(cost_counters(samples).values()) > 10 * sum(months.values())


async def test_a_failed_costs_poll_keeps_counters_and_month_to_date(
    simulation: Simulation, start_exporter: ExporterFactory, clocked: FakeTime
) -> None:
    build_costs(simulation.org, JANUARY_1 - 5 * DAY)
    client = await start_costs(start_exporter)
    before = await scrape(client)
    simulation.state.faults.add(Fault("malformed_json"), endpoint="costs", times=None)
    clocked.advance(HOUR)
    after = await scrape(client)
    spend = [name for name, _ in before if "usd" in name]
    assert spend
    assert {k: v for k, v in after.items() if k[0] in spend} == {
        k: v for k, v in before.items() if k[0] in spend
    }
    assert sample(after, "openai_exporter_collector_success", collector="costs") == 0


def build_limits(org: Organization) -> dict[str, str]:
    capped = org.add_project("capped", id="proj_capped", created_at=JANUARY_1)
    loose = org.add_project("loose", id="proj_loose", created_at=JANUARY_1)
    free = org.add_project("free", id="proj_free", created_at=JANUARY_1)
    gone = org.add_project("gone", id="proj_gone", created_at=JANUARY_1)
    org.set_spend_limit(500_000, enforcing=False)
    org.set_project_spend_limit(capped.id, 25_050, enforcing=True)
    org.set_project_spend_limit(loose.id, 100_000, enforcing=False)
    org.set_project_spend_limit(gone.id, 1_000, enforcing=True)
    org.archive_project(gone.id)
    org.add_spend_alert(400_000, id="alert_org")
    org.add_project_spend_alert(loose.id, 80_000, id="alert_loose")
    return {"capped": capped.id, "loose": loose.id, "free": free.id, "gone": gone.id}


async def test_spend_limits_in_dollars_enforcement_and_alerts(
    simulation: Simulation, start_exporter: ExporterFactory
) -> None:
    ids = build_limits(simulation.org)
    samples = await scrape(await start_exporter(enabled_collectors=("spend_limits",)))
    assert sample(samples, "openai_organization_spend_limit_usd") == 5000
    assert sample(samples, "openai_organization_spend_limit_enforcing") == 0
    assert sample(samples, "openai_project_spend_limit_usd", project_id=ids["capped"]) == 250.5
    assert sample(samples, "openai_project_spend_limit_enforcing", project_id=ids["capped"]) == 1
    assert sample(samples, "openai_project_spend_limit_enforcing", project_id=ids["loose"]) == 0
    assert sample(samples, "openai_project_spend_limit_usd", project_id=ids["free"]) is None
    assert sample(samples, "openai_project_spend_limit_enforcing", project_id=ids["free"]) is None
    assert sample(samples, "openai_project_spend_limit_usd", project_id=ids["gone"]) is None, (
        "archived projects are not asked"
    )
    assert (
        sample(samples, "openai_organization_spend_alert_threshold_usd", spend_alert_id="alert_org")
        == 4000
    )
    assert (
        sample(
            samples,
            "openai_project_spend_alert_threshold_usd",
            project_id=ids["loose"],
            spend_alert_id="alert_loose",
        )
        == 800
    )
    assert sample(samples, "openai_exporter_collector_success", collector="spend_limits") == 1


async def test_no_organization_limit_means_no_series(
    simulation: Simulation, start_exporter: ExporterFactory
) -> None:
    build_limits(simulation.org)
    simulation.org.clear_spend_limit()
    samples = await scrape(await start_exporter(enabled_collectors=("spend_limits",)))
    assert sample(samples, "openai_organization_spend_limit_usd") is None
    assert sample(samples, "openai_organization_spend_limit_enforcing") is None
    assert sample(samples, "openai_exporter_collector_success", collector="spend_limits") == 1


async def test_a_failing_project_keeps_its_last_limit(
    simulation: Simulation, start_exporter: ExporterFactory, fake_time: FakeTime
) -> None:
    ids = build_limits(simulation.org)
    client = await start_exporter(enabled_collectors=("spend_limits",))
    await scrape(client)
    simulation.org.set_project_spend_limit(ids["capped"], 99_900, enforcing=False)
    simulation.org.set_project_spend_limit(ids["loose"], 200_000, enforcing=True)
    simulation.state.faults.add(
        Fault("status", status=500),
        endpoint="project_spend_limit",
        project_id=ids["capped"],
        times=None,
    )
    fake_time.advance(3601)  # spend limits refresh with the costs, hourly
    samples = await scrape(client)
    assert sample(samples, "openai_project_spend_limit_usd", project_id=ids["capped"]) == 250.5
    assert sample(samples, "openai_project_spend_limit_usd", project_id=ids["loose"]) == 2000
    assert sample(samples, "openai_project_spend_limit_enforcing", project_id=ids["loose"]) == 1
    partial = {"collector": "spend_limits", "result": "partial"}
    assert sample(samples, "openai_exporter_refreshes_total", **partial) == 1


async def test_rate_limits_per_project_and_model(
    simulation: Simulation, start_exporter: ExporterFactory
) -> None:
    ids = build_limits(simulation.org)
    samples = await scrape(await start_exporter(enabled_collectors=("rate_limits",)))
    limits = simulation.org.rate_limits(ids["capped"])
    assert len(limits) > 1
    for limit in limits:
        labels = {"project_id": ids["capped"], "model": limit.model}
        assert sample(samples, "openai_project_rate_limit_requests_per_minute", **labels) == (
            limit.max_requests_per_1_minute
        )
        assert sample(samples, "openai_project_rate_limit_tokens_per_minute", **labels) == (
            limit.max_tokens_per_1_minute
        )
    archived = {"project_id": ids["gone"], "model": limits[0].model}
    assert sample(samples, "openai_project_rate_limit_requests_per_minute", **archived) is None
