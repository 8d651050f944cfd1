"""The bucket ledger: counters from re-read, late-growing buckets, counted exactly once.

A random world of series whose buckets grow late toward their final values is polled
through a sliding window, with polls that fail, polls retried, pages split anywhere and a
restart. Each counter must never decrease, and must end at the sum of the final values
of the buckets from its first window on.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Mapping
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.collectors.ledger import (
    BucketLedger,
    SeriesKey,
    bucket_count,
    window_start,
)

WIDTH = 3600
LOOKBACK = 3 * WIDTH
LATENESS = 2 * WIDTH  # a bucket grows until two hours after its end (within the lookback)
KEYS: tuple[SeriesKey, ...] = (("proj_a", "key_1", "gpt-4o"), ("proj_a", "", "gpt-4o"))


class World:
    """Final values per (series, bucket) and what the API reports of them at a time."""

    def __init__(self, rng: random.Random, buckets: int) -> None:
        self.final = {
            (key, start * WIDTH): (rng.randrange(0, 500), rng.randrange(0, 50_000))
            for key in KEYS
            for start in range(buckets)
        }
        # The share each bucket shows at each step of its growth: random but monotone.
        self.curve = {slot: sorted(rng.random() for _ in range(4)) for slot in self.final}

    def reported(self, now: int, start: int) -> dict[SeriesKey, tuple[int, ...]]:
        if start > now or (KEYS[0], start) not in self.final:
            return {}  # not begun, or past the end of the world: empty buckets
        out: dict[SeriesKey, tuple[int, ...]] = {}
        for key in KEYS:
            final = self.final[(key, start)]
            progress = (now - start) / (WIDTH + LATENESS)
            if progress >= 1:
                out[key] = final
                continue
            share = self.curve[(key, start)][min(3, int(progress * 4))] * progress
            out[key] = tuple(int(value * share) for value in final)
        return out

    def poll(self, now: int) -> tuple[dict[SeriesKey, dict[int, tuple[int, ...]]], int]:
        start = window_start(now, LOOKBACK, WIDTH)
        observed: dict[SeriesKey, dict[int, tuple[int, ...]]] = {}
        for index in range(bucket_count(now, start, WIDTH)):
            bucket = start + index * WIDTH
            for key, values in self.reported(now, bucket).items():
                observed.setdefault(key, {})[bucket] = values
        return observed, start


def split_pages(
    observed: Mapping[SeriesKey, Mapping[int, tuple[int, ...]]], rng: random.Random
) -> dict[SeriesKey, dict[int, tuple[int, ...]]]:
    """The same poll as the collector gathers it when one bucket's results are split over
    two pages: the parts are summed before the ledger sees them."""
    gathered: dict[SeriesKey, dict[int, tuple[int, ...]]] = {}
    for key, buckets in observed.items():
        for bucket, values in buckets.items():
            first = tuple(rng.randrange(0, value + 1) for value in values)
            second = tuple(v - f for v, f in zip(values, first, strict=True))
            slot = gathered.setdefault(key, {})
            slot[bucket] = first
            slot[bucket] = tuple(map(int.__add__, slot[bucket], second))
    return gathered


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32), fail_rate=st.sampled_from([0.0, 0.3]))
def test_counters_end_at_the_final_sums_and_never_decrease(seed: int, fail_rate: float) -> None:
    rng = random.Random(seed)
    world = World(rng, buckets=30)
    ledger: BucketLedger[int] = BucketLedger((0, 0))
    first_window: int | None = None
    last_good = 0
    now = 4 * WIDTH + rng.randrange(WIDTH)
    history: list[dict[SeriesKey, tuple[int, ...]]] = []
    while now < 26 * WIDTH:
        if rng.random() >= fail_rate or now - last_good >= WIDTH // 2:
            observed, start = world.poll(now)
            observed = split_pages(observed, rng)
            ledger, _ = ledger.advance(observed, window_start=start)
            if rng.random() < 0.3:  # the same poll retried: adds nothing
                retried, _ = ledger.advance(observed, window_start=start)
                assert dict(retried.totals()) == dict(ledger.totals())
            first_window = start if first_window is None else first_window
            last_good = now
            history.append(dict(ledger.totals()))
            for key in ledger.series:
                assert len(ledger.series[key].counted) <= bucket_count(now, start, WIDTH)
        now += rng.choice([300, 300, 600, 1800])
    # Let every bucket of the world settle, then poll once more.
    end = 30 * WIDTH + LATENESS + LOOKBACK - WIDTH
    for now in range(26 * WIDTH, end + 1, 1800):
        observed, start = world.poll(now)
        ledger, _ = ledger.advance(observed, window_start=start)
        history.append(dict(ledger.totals()))
    for before, after in itertools.pairwise(history):
        for key, totals in before.items():
            assert all(a >= b for a, b in zip(after[key], totals, strict=True)), "went down"
    assert first_window is not None
    for key in KEYS:
        expected = tuple(
            sum(
                world.final[(key, bucket)][index]
                for bucket in range(first_window, 30 * WIDTH, WIDTH)
            )
            for index in range(2)
        )
        assert ledger.series[key].totals == expected


def test_first_poll_counts_its_whole_window_like_a_restart() -> None:
    world = World(random.Random(7), buckets=12)
    now = 10 * WIDTH + 1200
    observed, start = world.poll(now)
    ledger, _ = BucketLedger((0, 0)).advance(observed, window_start=start)
    for key in KEYS:
        expected = [0, 0]
        for buckets in (observed[key],):
            for values in buckets.values():
                expected = [e + v for e, v in zip(expected, values, strict=True)]
        assert ledger.series[key].totals == tuple(expected)
    restarted, _ = BucketLedger((0, 0)).advance(observed, window_start=start)
    assert dict(restarted.totals()) == dict(ledger.totals()), "a restart starts from the window"


def test_growth_is_added_once_and_a_failed_poll_changes_nothing() -> None:
    key = KEYS[0]
    ledger: BucketLedger[int] = BucketLedger((0,))
    ledger, _ = ledger.advance({key: {0: (10,), WIDTH: (1,)}}, window_start=0)
    assert ledger.series[key].totals == (11,)
    kept = ledger  # a failed poll: the runner keeps the previous state, nothing moves
    ledger, _ = kept.advance({key: {0: (15,), WIDTH: (4,)}}, window_start=0)
    assert ledger.series[key].totals == (19,)
    assert kept.series[key].totals == (11,), "advance leaves the previous ledger intact"


def test_a_shrinking_bucket_adds_nothing_and_is_reported_once() -> None:
    key = KEYS[0]
    ledger: BucketLedger[int] = BucketLedger((0,))
    ledger, _ = ledger.advance({key: {0: (10,)}}, window_start=0)
    ledger, shrinks = ledger.advance({key: {0: (7,)}}, window_start=0)
    assert ledger.series[key].totals == (10,)
    assert [(s.bucket, s.counted, s.reported) for s in shrinks] == [(0, (10,), (7,))]
    ledger, shrinks = ledger.advance({key: {0: (8,)}}, window_start=0)
    assert shrinks == [], "logged once"
    assert ledger.series[key].totals == (10,), "growing back to what was counted adds nothing"
    ledger, _ = ledger.advance({key: {0: (12,)}}, window_start=0)
    assert ledger.series[key].totals == (12,)


def test_a_bucket_leaving_the_window_is_forgotten_and_its_count_stays() -> None:
    key = KEYS[0]
    ledger: BucketLedger[int] = BucketLedger((0,))
    ledger, _ = ledger.advance({key: {0: (5,), WIDTH: (3,)}}, window_start=0)
    ledger, _ = ledger.advance({key: {0: (9,), WIDTH: (3,)}}, window_start=WIDTH)
    assert ledger.series[key].totals == (8,), "bucket 0 left the window: its late growth is lost"
    assert [bucket for bucket, _ in ledger.series[key].counted] == [WIDTH]
    ledger, _ = ledger.advance({}, window_start=5 * WIDTH)
    assert ledger.series[key].counted == ()
    assert ledger.series[key].totals == (8,), "a series out of the window keeps its counter"


def test_costs_count_exactly_in_decimals_and_credits_count_as_zero() -> None:
    key = ("proj_a", "", "gpt-4o, input")
    ledger: BucketLedger[Decimal] = BucketLedger((Decimal(0),))
    for value in ("0.1", "0.2", "0.3"):
        ledger, _ = ledger.advance({key: {0: (Decimal(value),)}}, window_start=0)
    assert ledger.series[key].totals == (Decimal("0.3"),)
    ledger, _ = ledger.advance({key: {86400: (Decimal("-4.5"),)}}, window_start=0)
    assert ledger.series[key].totals == (Decimal("0.3"),), "a credit never lowers the counter"


@pytest.mark.parametrize("measures", [1, 4])
def test_values_of_the_wrong_arity_are_refused(measures: int) -> None:
    with pytest.raises(ValueError, match="values for"):
        BucketLedger((0,) * measures).advance({KEYS[0]: {0: (1, 2)}}, window_start=0)
