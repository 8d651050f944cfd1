"""A small run of the benchmark's usage size (bench/), asserting only exact facts, never a time.

The same driver as ``make bench``'s usage size: the simulator here at a fixed instant,
the usage collector alone in a worker process, a first poll and steady polls that
re-read the same window as it grows.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bench.main import measure_usage
from bench.plan import PARTS, Plan
from bench.sizes import POLL_INTERVAL, USAGE_AT, USAGE_SIZES, UsageSize
from exporter.collectors.ledger import window_start
from exporter.collectors.usage import BUCKET_WIDTH, SOURCES
from exporter.simulator.organization import build_organization
from exporter.simulator.usage import GROUP_FIELDS, USAGE_SOURCES

pytestmark = pytest.mark.slow  # a child process and a few real seconds

# 20 of the 50 keys active, 3 models each, in each of the 6 sources.
SMALL = UsageSize("usage-small", projects=10, keys_per_project=5, active_keys=20, models=3)
GROUPED = ("project_id", "api_key_id", "model")
LOOKBACK = 3 * 3600  # --usage.lookback's default
STEADY = 2


@pytest.fixture(scope="module")
def usage_run() -> dict[str, Any]:
    plan = Plan(
        sizes=(),
        parts=frozenset(PARTS),
        latency=0.0,
        concurrency=16,
        refresh_runs=1,
        naive_runs=1,
        scrape_runs=2,
        baseline_runs=1,
        http_scrapes=1,
        plain_scrapes=1,
        storm_scrapes=1,
        usage_sizes=(SMALL,),
        usage_runs=1,
        steady_polls=STEADY,
        usage_check=True,
    )
    return asyncio.run(measure_usage(SMALL, plan))


def reported(at: int) -> tuple[dict[str, int], int]:
    """Per source the series the simulator reports in the window at ``at``, and the
    requests of every bucket of the window summed, as it reports them then."""
    org = build_organization(SMALL.spec())
    start = window_start(at, LOOKBACK, BUCKET_WIDTH)
    series: dict[str, int] = {}
    requests = 0
    for source in USAGE_SOURCES:
        buckets = org.usage.reported_values(source, start, at, "1h", GROUPED, now=at)
        series[source] = len({group for groups in buckets.values() for group in groups})
        for groups in buckets.values():
            requests += sum(values["num_model_requests"] for values in groups.values())
    return series, requests


def polls(usage_run: dict[str, Any]) -> list[dict[str, Any]]:
    (run,) = usage_run["runs"]
    found: list[dict[str, Any]] = run["polls"]
    return found


def test_the_usage_size_is_what_the_issue_says() -> None:
    size = USAGE_SIZES["usage"]
    assert size.active_keys == 10_000
    assert size.nominal_series == 10_000 * 3 * 6 == 180_000
    assert size.minimum_requests == 6
    assert SMALL.nominal_series == 20 * 3 * 6


def test_every_poll_makes_one_request_per_source(usage_run: dict[str, Any]) -> None:
    assert len(polls(usage_run)) == 1 + STEADY
    for poll in polls(usage_run):
        assert poll["requests"] == len(SOURCES) == 6
        assert poll["result"] == "success"
        assert poll["bytes_read"] > 0


def test_the_polls_re_read_one_window_five_minutes_apart(usage_run: dict[str, Any]) -> None:
    ats = [poll["at"] for poll in polls(usage_run)]
    assert ats == [USAGE_AT + n * POLL_INTERVAL for n in range(1 + STEADY)]
    starts = {window_start(at, LOOKBACK, BUCKET_WIDTH) for at in ats}
    assert len(starts) == 1  # the same four buckets each time
    (start,) = starts
    assert (ats[-1] - start) // BUCKET_WIDTH + 1 == SMALL.lookback_buckets == 4


def test_series_are_every_active_key_model_and_source_with_usage(
    usage_run: dict[str, Any],
) -> None:
    org = build_organization(SMALL.spec())
    key = GROUP_FIELDS["completions"].index("api_key_id")
    # Keyless (playground) usage of every third project with usage: api_key_id null.
    playground = sum(1 for series in org.usage.series("completions") if series.dims[key] is None)
    assert usage_run["simulated_series"] == SMALL.nominal_series + playground
    for poll in polls(usage_run):
        expected, _ = reported(poll["at"])
        assert poll["series_by_source"] == expected
        assert poll["series"] == sum(expected.values()) <= SMALL.nominal_series + playground


def test_counters_hold_each_bucket_once_as_it_grows(usage_run: dict[str, Any]) -> None:
    # Nothing left the window and nothing shrank: the counters are exactly the window's
    # buckets as reported at the last poll, however many polls re-read them.
    counted = [poll["counted_requests"] for poll in polls(usage_run)]
    assert counted == [reported(poll["at"])[1] for poll in polls(usage_run)]
    assert counted[0] < counted[-1]  # the window grew between the polls


def test_the_scrape_holds_one_sample_per_series_and_measure(usage_run: dict[str, Any]) -> None:
    last = polls(usage_run)[-1]
    measures = {source.name: len(source.measures) for source in SOURCES}
    samples = sum(measures[name] * count for name, count in last["series_by_source"].items())
    assert usage_run["scrape"]["usage_series"] == samples
    assert usage_run["scrape"]["same_samples"] is True


def test_memory_is_measured_for_the_usage_state(usage_run: dict[str, Any]) -> None:
    (run,) = usage_run["runs"]
    assert run["memory_before"]["usage_bytes"] == 0  # no poll yet
    after = run["memory_after"]
    assert after["usage_objects"] > polls(usage_run)[-1]["series"]
    assert after["usage_bytes"] > 0
    assert after["VmRSS"] > 0
