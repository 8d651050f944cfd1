"""Usage counters through a real exporter on the simulator's late-growing buckets.

Every poll re-reads the window; the counters must count each request and token once:
through late growth, pages split anywhere, retried requests, failed polls and a
restart, ending at the sum of the final bucket values since the first poll.
"""

from __future__ import annotations

import math
import random
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from exporter.simulator.buckets import BucketPaging
from exporter.simulator.faults import ApiEndpoint, Fault
from exporter.simulator.organization import Organization
from exporter.simulator.usage import USAGE_SOURCES
from tests.support import (
    DAY,
    ExporterFactory,
    FakeTime,
    Samples,
    Simulation,
    assert_promtool_accepts,
    sample,
    scrape,
    scrape_text,
)

HOUR = 3600
START = 1_767_225_600 + 9 * HOUR + 1234  # 2026-01-01 09:20:34 UTC
LOOKBACK = 3 * HOUR
INTERVAL = 300
GROUPS = ("project_id", "api_key_id", "model")
# Our counter families by the simulator's result fields, per source.
MEASURES: dict[str, tuple[tuple[str, str], ...]] = {
    "completions": (
        ("openai_usage_requests_total", "num_model_requests"),
        ("openai_usage_input_tokens_total", "input_tokens"),
        ("openai_usage_cached_input_tokens_total", "input_cached_tokens"),
        ("openai_usage_output_tokens_total", "output_tokens"),
    ),
    "embeddings": (
        ("openai_usage_requests_total", "num_model_requests"),
        ("openai_usage_input_tokens_total", "input_tokens"),
    ),
    "moderations": (
        ("openai_usage_requests_total", "num_model_requests"),
        ("openai_usage_input_tokens_total", "input_tokens"),
    ),
    "images": (
        ("openai_usage_requests_total", "num_model_requests"),
        ("openai_usage_images_total", "images"),
    ),
    "audio_speeches": (
        ("openai_usage_requests_total", "num_model_requests"),
        ("openai_usage_characters_total", "characters"),
    ),
    "audio_transcriptions": (
        ("openai_usage_requests_total", "num_model_requests"),
        ("openai_usage_audio_seconds_total", "seconds"),
    ),
}
WITH_SOURCE = {
    "openai_usage_requests_total",
    "openai_usage_input_tokens_total",
    "openai_usage_cached_input_tokens_total",
    "openai_usage_output_tokens_total",
}
ENDPOINT_OF: dict[str, ApiEndpoint] = {
    "completions": "usage_completions",
    "embeddings": "usage_embeddings",
    "moderations": "usage_moderations",
    "images": "usage_images",
    "audio_speeches": "usage_audio_speeches",
    "audio_transcriptions": "usage_audio_transcriptions",
}
Counters = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def build_usage(org: Organization) -> dict[str, str]:
    """Two keys with steady usage in every source, a null-key series, and bursts."""
    project = org.add_project("usage", id="proj_usage", created_at=START - 90 * DAY)
    key_a = org.add_key(project.id, "a", id="key_a", created_at=START - 60 * DAY).id
    key_b = org.add_key(project.id, "b", id="key_b", created_at=START - 60 * DAY).id
    per_request = {
        "completions": {"input_tokens": 900, "input_cached_tokens": 300, "output_tokens": 250},
        "embeddings": {"input_tokens": 400},
        "moderations": {"input_tokens": 120},
        "images": {"images": 2},
        "audio_speeches": {"characters": 700},
        "audio_transcriptions": {"seconds": 45},
    }
    for index, source in enumerate(USAGE_SOURCES):
        for key, rate in ((key_a, 600 + 97 * index), (key_b, 150 + 31 * index)):
            org.usage.add_series(
                source,
                project_id=project.id,
                api_key_id=key,
                user_id=None,
                model=_model(source, 0),
                start=START - 2 * DAY,
                rate=rate,
                per_request=per_request[source],
            )
    org.usage.add_series(
        "completions",
        project_id=project.id,
        api_key_id=None,  # the playground: usage of no key
        user_id=None,
        model=_model("completions", 1),
        start=START - 2 * DAY,
        rate=80,
        per_request=per_request["completions"],
    )
    rng = random.Random(3)
    for _ in range(40):
        org.record_usage(
            project.id,
            api_key_id=key_b,
            at=START - 2 * HOUR + rng.randrange(8 * HOUR),
            source="completions",
            model=_model("completions", 0),
            requests=rng.randrange(1, 50),
            input_tokens=rng.randrange(10_000),
            output_tokens=rng.randrange(5_000),
        )
    return {"project": project.id, "a": key_a, "b": key_b}


def _model(source: str, index: int) -> str:
    from exporter.simulator.usage import MODELS

    return MODELS[source][index]  # type: ignore[index]


def counters(samples: Samples) -> Counters:
    out: Counters = {}
    for (name, labels), value in samples.items():
        if name.startswith("openai_usage_"):
            out[(name, tuple(sorted(labels)))] = value
    return out


def _add(out: Counters, source: str, groups: dict[Any, dict[str, int]]) -> None:
    for (project_id, api_key_id, model), values in groups.items():
        labels = {
            "project_id": str(project_id or ""),
            "api_key_id": str(api_key_id or ""),
            "model": str(model or ""),
        }
        for family, field in MEASURES[source]:
            full = {**labels, "source": source} if family in WITH_SOURCE else labels
            key = (family, tuple(sorted(full.items())))
            out[key] = out.get(key, 0) + values[field]


def expected(org: Organization, first_window: int, now: int) -> Counters:
    """What every counter must hold at a good poll at ``now``: the final values of the
    buckets that left the window since ``first_window``, plus what the API reports now
    for the buckets still in it (each was counted at its largest value, the latest)."""
    out: Counters = {}
    window = window_of(now)
    for source in USAGE_SOURCES:
        for groups in org.usage.final_values(source, first_window, window, "1h", GROUPS).values():
            _add(out, source, groups)
        reported = org.usage.reported_values(source, window, now + 1, "1h", GROUPS, now=now)
        for groups in reported.values():
            _add(out, source, groups)
    return out


def window_of(now: float) -> int:
    return math.floor((now - LOOKBACK) / HOUR) * HOUR


@pytest.fixture
def clocked(simulation: Simulation, fake_time: FakeTime) -> FakeTime:
    """The simulator and the exporter read the same fake wall clock."""
    fake_time.wall_now = START
    simulation.state.clock = fake_time.wall
    return fake_time


async def start_usage(start_exporter: ExporterFactory, **overrides: Any) -> TestClient[Any, Any]:
    return await start_exporter(
        enabled_collectors=("usage",), usage_interval=INTERVAL, cache_ttl=INTERVAL, **overrides
    )


def assert_never_decreased(before: Counters, after: Counters) -> None:
    for key, value in before.items():
        assert after.get(key, -1) >= value, f"{key} went from {value} to {after.get(key)}"


async def test_counters_count_every_request_once_through_late_data_faults_and_split_pages(
    simulation: Simulation, start_exporter: ExporterFactory, clocked: FakeTime
) -> None:
    org = simulation.org
    build_usage(org)
    state = simulation.state
    rng = random.Random(11)
    client = await start_usage(start_exporter)
    first_window = window_of(clocked.wall())
    previous: Counters = {}
    failed_polls = 0
    for _ in range(48):  # four hours of polls
        state.usage_paging = rng.choice(
            [BucketPaging(), BucketPaging(max_buckets_per_page=1), BucketPaging(None, 3)]
        )
        roll = rng.random()
        endpoint = ENDPOINT_OF[rng.choice(USAGE_SOURCES)]
        if roll < 0.15:  # this source fails for good this poll (retries exhausted)
            state.faults.add(Fault("status", status=503), endpoint=endpoint, times=5)
            failed_polls += 1
        elif roll < 0.35:  # a retried request: the retry answers
            state.faults.add(Fault("status", status=500), endpoint=endpoint, times=1)
        current = counters(await scrape(client))
        assert_never_decreased(previous, current)
        previous = current
        state.faults.clear()
        clocked.advance(INTERVAL)
    assert failed_polls > 3, "the replay must include failed polls"
    state.usage_paging = BucketPaging(max_buckets_per_page=1, max_results_per_page=3)
    final = counters(await scrape(client))  # a good poll, every bucket split over pages
    assert_never_decreased(previous, final)
    truth = expected(org, first_window, int(clocked.wall()))
    assert final.keys() == truth.keys(), "every series and only those"
    assert {k: v for k, v in final.items() if v != truth[k]} == {}
    assert window_of(clocked.wall()) > first_window + 3 * HOUR, "buckets left the window"


async def test_a_restart_counts_its_whole_window_again_as_a_counter_reset(
    simulation: Simulation, start_exporter: ExporterFactory, clocked: FakeTime
) -> None:
    org = simulation.org
    build_usage(org)
    first = counters(await scrape(await start_usage(start_exporter)))
    clocked.advance(2 * HOUR)
    restarted = counters(await scrape(await start_usage(start_exporter)))
    now = int(clocked.wall())
    reported = expected(org, window_of(now), now)
    assert restarted == reported, "a new process counts exactly its first window"
    assert first.keys() == restarted.keys()


async def test_one_page_per_source_per_poll_with_the_window_and_grouping_asked(
    simulation: Simulation, start_exporter: ExporterFactory, clocked: FakeTime
) -> None:
    build_usage(simulation.org)
    await scrape(await start_usage(start_exporter))
    for source in USAGE_SOURCES:
        [query] = simulation.requests_to(f"usage_{source}")
        assert query["start_time"] == str(window_of(clocked.wall()))
        assert query["bucket_width"] == "1h"
        assert query["limit"] == "4", "3h back from 09:20 is 06:00: four hourly buckets"


async def test_usage_without_a_key_and_dimensions_left_out_are_empty_labels(
    simulation: Simulation, start_exporter: ExporterFactory, clocked: FakeTime
) -> None:
    ids = build_usage(simulation.org)
    samples = await scrape(await start_usage(start_exporter))
    playground = {
        "project_id": ids["project"],
        "api_key_id": "",
        "model": _model("completions", 1),
        "source": "completions",
    }
    assert (sample(samples, "openai_usage_requests_total", **playground) or 0) > 0
    coarse = await scrape(await start_usage(start_exporter, usage_group_by="project_id"))
    keys = {labels for name, labels in coarse if name == "openai_usage_requests_total"}
    assert {dict(labels)["api_key_id"] for labels in keys} == {""}
    assert {dict(labels)["model"] for labels in keys} == {""}
    total = sum(v for (n, _), v in samples.items() if n == "openai_usage_requests_total")
    assert sum(v for (n, _), v in coarse.items() if n == "openai_usage_requests_total") == total


async def test_a_failing_source_keeps_its_counters_while_the_others_advance(
    simulation: Simulation, start_exporter: ExporterFactory, clocked: FakeTime
) -> None:
    ids = build_usage(simulation.org)
    client = await start_usage(start_exporter)
    before = await scrape(client)
    images = {"project_id": ids["project"], "api_key_id": ids["a"], "model": "gpt-image-1"}
    text = {**images, "model": _model("completions", 0), "source": "completions"}
    simulation.state.faults.add(Fault("status", status=500), endpoint="usage_images", times=None)
    clocked.advance(INTERVAL)
    after = await scrape(client)
    assert sample(after, "openai_usage_images_total", **images) == sample(
        before, "openai_usage_images_total", **images
    )
    assert sample(after, "openai_usage_requests_total", **text) > sample(  # type: ignore[operator]
        before, "openai_usage_requests_total", **text
    )
    assert sample(after, "openai_exporter_collector_success", collector="usage") == 0
    assert (
        sample(after, "openai_exporter_refreshes_total", collector="usage", result="partial") == 1
    )
    assert sample(after, "openai_up") == 0
    simulation.state.faults.clear()
    clocked.advance(INTERVAL)
    recovered = await scrape(client)
    assert sample(recovered, "openai_usage_images_total", **images) > sample(  # type: ignore[operator]
        after, "openai_usage_images_total", **images
    ), "the next good poll counts what came in meanwhile"


@pytest.mark.parametrize(
    "fault", [Fault("wrong_shape"), Fault("repeat_cursor"), Fault("oversized_page")], ids=str
)
async def test_a_bad_usage_page_fails_its_source_alone_and_moves_no_counter(
    simulation: Simulation, start_exporter: ExporterFactory, clocked: FakeTime, fault: Fault
) -> None:
    build_usage(simulation.org)
    client = await start_exporter(
        enabled_collectors=("api_keys", "usage"), usage_interval=INTERVAL, cache_ttl=INTERVAL
    )
    before = counters(await scrape(client))
    simulation.state.faults.add(fault, endpoint="usage_embeddings", times=None)
    clocked.advance(INTERVAL)
    samples = await scrape(client)
    after = counters(samples)
    embeddings = {k: v for k, v in after.items() if ("source", "embeddings") in k[1]}
    assert embeddings
    assert embeddings == {k: before[k] for k in embeddings}, "the bad source kept its counters"
    reason = {"collector": "usage", "reason": "bad_response"}
    assert sample(samples, "openai_exporter_refresh_errors_total", **reason) == 1
    assert sample(samples, "openai_exporter_collector_success", collector="api_keys") == 1
    assert any(after[k] > before[k] for k in after if ("source", "completions") in k[1])


async def test_promtool_accepts_the_usage_and_cost_exposition(
    simulation: Simulation, start_exporter: ExporterFactory, clocked: FakeTime
) -> None:
    build_usage(simulation.org)
    client = await start_exporter(
        enabled_collectors=("api_keys", "usage", "costs", "spend_limits", "rate_limits")
    )
    text = await scrape_text(client)
    assert "openai_usage_requests_total{" in text
    assert "openai_cost_usd_total{" in text
    assert_promtool_accepts(text)
