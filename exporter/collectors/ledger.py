"""Counters from time buckets that the API re-reports as they grow (usage, costs).

The Usage and Costs APIs answer in time buckets whose values arrive late: a bucket keeps
growing after it was first reported, and the open bucket grows until it closes. Each
poll re-reads a trailing window of buckets. For every (series, bucket) in the window the
ledger remembers the values it has already counted, so a counter adds only the growth:

- a bucket seen for the first time adds all of its values (so the first poll after a
  start counts its whole window: a restart is a counter reset);
- a bucket that grew adds the difference; one that shrank adds nothing (and keeps the
  larger value it was counted at, so growing back to it adds nothing either);
- a bucket older than the window is forgotten; what it added stays in the counter;
- a series listed on several pages of one poll is summed before counting (the caller
  gathers a poll into an ``Observed`` first), so pages split anywhere count once.

A ledger is immutable: ``advance`` returns a new one and leaves the previous one intact,
so a failed poll simply keeps the previous ledger and no counter moves. Memory is one
entry per series plus one per (series, bucket) in the window.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

SeriesKey = tuple[str, ...]
Amount = TypeVar("Amount", int, Decimal)  # exact arithmetic: counters add no rounding error
Values = tuple[Amount, ...]  # one value per measure (requests, input tokens, ...)

# A poll's buckets: series -> bucket start -> the values the API reports for them now.
Observed = Mapping[SeriesKey, Mapping[int, tuple[Amount, ...]]]


@dataclass(frozen=True, slots=True)
class Series(Generic[Amount]):
    """One series: its counters, and what each bucket of the window has added to them."""

    totals: tuple[Amount, ...]
    counted: tuple[tuple[int, tuple[Amount, ...]], ...]  # (bucket start, values), by start


@dataclass(frozen=True, slots=True)
class Shrink:
    """A bucket reported below what was already counted for it (logged once)."""

    key: SeriesKey
    bucket: int
    counted: tuple[int | Decimal, ...]
    reported: tuple[int | Decimal, ...]


@dataclass(frozen=True, slots=True)
class BucketLedger(Generic[Amount]):
    """The counters of one set of measures, and the window's counted buckets.

    ``zeros`` gives the number of measures and their type (``int`` for usage, ``Decimal``
    for costs). Values below zero (a credit) count as zero: a counter never goes down.
    """

    zeros: tuple[Amount, ...]
    series: Mapping[SeriesKey, Series[Amount]] = field(default_factory=dict)
    # (series, bucket) pairs already logged as shrunk, so each is logged only once.
    shrunk: frozenset[tuple[SeriesKey, int]] = frozenset()

    def __len__(self) -> int:
        return len(self.series)

    def totals(self) -> Iterator[tuple[SeriesKey, tuple[Amount, ...]]]:
        for key, series in self.series.items():
            yield key, series.totals

    def advance(
        self, observed: Observed[Amount], *, window_start: int
    ) -> tuple[BucketLedger[Amount], list[Shrink]]:
        """The ledger after a poll that re-read every bucket from ``window_start`` on.

        Buckets before ``window_start`` are forgotten, and not counted if the API lists
        them anyway (nothing would remember them, so the next poll would count them
        again). Returns the new ledger and the buckets that shrank for the first time.
        """
        measures = len(self.zeros)
        # Most series change in one or two buckets per poll, or not at all: a series is
        # rebuilt only when a bucket leaves its window or one of its buckets changed.
        series: dict[SeriesKey, Series[Amount]] = dict(self.series)
        for key, before in self.series.items():
            if before.counted and before.counted[0][0] < window_start:
                kept = tuple(entry for entry in before.counted if entry[0] >= window_start)
                series[key] = Series(before.totals, kept)
        shrinks: list[Shrink] = []
        shrunk = {entry for entry in self.shrunk if entry[1] >= window_start}
        zeros = self.zeros
        for key, buckets in observed.items():
            known = series.get(key)
            counted = dict(known.counted) if known else {}
            totals: list[Amount] | None = None  # copied on the first growth only
            changed = known is None
            for bucket, reported in buckets.items():
                if bucket < window_start:
                    continue
                if len(reported) != measures:
                    raise ValueError(f"{len(reported)} values for {measures} measures")
                already = counted.get(bucket)
                if reported == already:
                    continue  # the common case: a settled bucket read again
                if already is None:
                    already = zeros
                    changed = True
                reported = tuple(map(max, reported, zeros))
                grown = False
                for index, (new, old) in enumerate(zip(reported, already, strict=True)):
                    if new > old:
                        if totals is None:
                            totals = list(known.totals if known else zeros)
                        totals[index] += new - old
                        grown = True
                    elif new < old and (key, bucket) not in shrunk:
                        shrunk.add((key, bucket))
                        shrinks.append(Shrink(key, bucket, already, reported))
                if grown or bucket not in counted:
                    counted[bucket] = tuple(map(max, reported, already))
                    changed = True
            if changed:
                new_totals = (
                    tuple(totals) if totals is not None else (known or _empty(zeros)).totals
                )
                series[key] = Series(new_totals, tuple(sorted(counted.items())))
        return BucketLedger(self.zeros, series, frozenset(shrunk)), shrinks


def add_observed(
    observed: dict[SeriesKey, dict[int, tuple[Amount, ...]]],
    key: SeriesKey,
    bucket: int,
    values: tuple[Amount, ...],
) -> None:
    """Gathers one result into a poll's ``Observed``: a series listed again for the same
    bucket (its results split over pages) is summed, never counted twice."""
    slot = observed.setdefault(key, {})
    earlier = slot.get(bucket)
    slot[bucket] = (
        values if earlier is None else tuple(a + b for a, b in zip(earlier, values, strict=True))
    )


def _empty(zeros: tuple[Amount, ...]) -> Series[Amount]:
    return Series(zeros, ())


def window_start(now: float, lookback: float, width: int) -> int:
    """The first bucket a poll re-reads: the one holding ``now - lookback`` (buckets are
    aligned to their width in UTC, as the API aligns them)."""
    return math.floor((now - lookback) / width) * width


def bucket_count(now: float, start: int, width: int) -> int:
    """Buckets from ``start`` up to and including the open one."""
    return math.floor((now - start) / width) + 1


def log_shrinks(shrinks: Iterable[Shrink], what: str) -> None:
    """One debug line per bucket that shrank (the ledger reports each only once)."""
    for shrink in shrinks:
        log.debug(
            "%s bucket at %d for %s shrank from %s to %s; counted nothing for it",
            what,
            shrink.bucket,
            "/".join(shrink.key),
            [str(value) for value in shrink.counted],
            [str(value) for value in shrink.reported],
        )
