"""Usage and costs of a simulated organization, with the API's late data.

The model
---------
Every *series* (one source, project, key, user, model, ...) has a cumulative
count of requests `C(x)`: an integer, non-decreasing in time `x` (seconds),
`C(x) = rate * (G(x) - G(start)) // RATE_SCALE`, where `G` is the integral of
a weekly shape of per-hour weights (higher in working hours and on weekdays;
constant within an hour, linear inside it). The usage *in* any bucket
`[s, e)` is `C(e) - C(s)`, so a 1h bucket's value is exactly the sum of its
60 1m values and a day the sum of its 24 hours, at any width. Every other
metric is `requests * per_request[metric]`. Explicit usage (`UsageEvent`)
adds fixed amounts at one second.

Late data: each unit of usage is reported in two halves, one as it happens
and the other `lateness` seconds later. At time `now` a series reports
`(occurred(now) + occurred(now - lateness)) // 2` requests of a bucket, where
`occurred(t)` is its usage in the bucket before `t`, and `per_request` times
that of every other metric (explicit usage: each amount's halves, floored). So the open bucket
grows as time passes, a closed bucket keeps growing until `end + lateness`,
and from then on it reports its final value `C(e) - C(s)`; values are
integers, non-decreasing in `now`, and the same for the same `now`.

Costs come from the same series (a price per request for each line item) and
from cost-only series (storage, a commitment), with their own
`cost_lateness`; amounts are integer micro-dollars inside, dollars on the wire.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, get_args

UsageSource = Literal[
    "completions",
    "embeddings",
    "moderations",
    "images",
    "audio_speeches",
    "audio_transcriptions",
]
USAGE_SOURCES: tuple[UsageSource, ...] = get_args(UsageSource)
BucketWidth = Literal["1m", "1h", "1d"]
WIDTH_SECONDS: dict[BucketWidth, int] = {"1m": 60, "1h": 3_600, "1d": 86_400}

HOUR = 3_600
DAY = 86_400
WEEK_HOURS = 168
DEFAULT_LATENESS = 15 * 60
DEFAULT_COST_LATENESS = DAY
# A key used within this window of the organization's build time has background usage.
ACTIVE_WINDOW = 2 * DAY
# rate is requests per hour at weight 100; G counts weight-seconds.
RATE_SCALE = 100 * HOUR
MICRO = 1_000_000

# The models each source's usage comes from, most used first.
MODELS: dict[UsageSource, tuple[str, ...]] = {
    "completions": ("gpt-4o", "gpt-4o-mini", "o3-mini", "gpt-4.1"),
    "embeddings": ("text-embedding-3-small", "text-embedding-3-large", "text-embedding-ada-002"),
    "moderations": (
        "omni-moderation-latest",
        "text-moderation-latest",
        "omni-moderation-2024-09-26",
    ),
    "images": ("gpt-image-1", "dall-e-3", "dall-e-2"),
    "audio_speeches": ("tts-1", "gpt-4o-mini-tts", "tts-1-hd"),
    "audio_transcriptions": ("whisper-1", "gpt-4o-transcribe", "gpt-4o-mini-transcribe"),
}
# The integer fields of each source's result, `num_model_requests` last.
METRICS: dict[UsageSource, tuple[str, ...]] = {
    "completions": (
        "input_tokens",
        "input_cached_tokens",
        "output_tokens",
        "input_audio_tokens",
        "output_audio_tokens",
        "num_model_requests",
    ),
    "embeddings": ("input_tokens", "num_model_requests"),
    "moderations": ("input_tokens", "num_model_requests"),
    "images": ("images", "num_model_requests"),
    "audio_speeches": ("characters", "num_model_requests"),
    "audio_transcriptions": ("seconds", "num_model_requests"),
}
_BASE_FIELDS = ("project_id", "user_id", "api_key_id", "model")
# The `group_by` values each source accepts (the spec's enums); also its result's fields.
GROUP_FIELDS: dict[UsageSource, tuple[str, ...]] = {
    "completions": (*_BASE_FIELDS, "batch", "service_tier"),
    "embeddings": _BASE_FIELDS,
    "moderations": _BASE_FIELDS,
    "images": (*_BASE_FIELDS, "size", "source"),
    "audio_speeches": _BASE_FIELDS,
    "audio_transcriptions": _BASE_FIELDS,
}
# Filters of the usage endpoints the simulator honours (query name -> field).
USAGE_FILTERS: dict[str, str] = {
    "project_ids": "project_id",
    "user_ids": "user_id",
    "api_key_ids": "api_key_id",
    "models": "model",
}
COST_GROUP_FIELDS: tuple[str, ...] = ("project_id", "line_item", "api_key_id")
COST_FILTERS: dict[str, str] = {"project_ids": "project_id", "api_key_ids": "api_key_id"}

# Prices in micro-dollars per 1,000 units, per line item kind of each model.
# (line item suffix, quantity unit, metric the quantity comes from, price)
_PriceLine = tuple[str, str, str, int]
PRICES: dict[str, tuple[_PriceLine, ...]] = {
    "gpt-4o": (
        ("input", "tokens", "uncached", 2_500),
        ("cached input", "tokens", "input_cached_tokens", 1_250),
        ("output", "tokens", "output_tokens", 10_000),
    ),
    "gpt-4o-mini": (
        ("input", "tokens", "uncached", 150),
        ("cached input", "tokens", "input_cached_tokens", 75),
        ("output", "tokens", "output_tokens", 600),
    ),
    "o3-mini": (
        ("input", "tokens", "uncached", 1_100),
        ("cached input", "tokens", "input_cached_tokens", 550),
        ("output", "tokens", "output_tokens", 4_400),
    ),
    "gpt-4.1": (
        ("input", "tokens", "uncached", 2_000),
        ("cached input", "tokens", "input_cached_tokens", 500),
        ("output", "tokens", "output_tokens", 8_000),
    ),
    "text-embedding-3-small": (("input", "tokens", "input_tokens", 20),),
    "text-embedding-3-large": (("input", "tokens", "input_tokens", 130),),
    "text-embedding-ada-002": (("input", "tokens", "input_tokens", 100),),
    # Moderations are free: no line item.
    "gpt-image-1": (("images", "images", "images", 42_000_000),),
    "dall-e-3": (("images", "images", "images", 40_000_000),),
    "dall-e-2": (("images", "images", "images", 20_000_000),),
    "tts-1": (("characters", "characters", "characters", 15_000),),
    "tts-1-hd": (("characters", "characters", "characters", 30_000),),
    "gpt-4o-mini-tts": (("characters", "characters", "characters", 12_000),),
    "whisper-1": (("seconds", "duration_seconds", "seconds", 100_000),),
    "gpt-4o-transcribe": (("seconds", "duration_seconds", "seconds", 100_000),),
    "gpt-4o-mini-transcribe": (("seconds", "duration_seconds", "seconds", 50_000),),
}
STORAGE_LINE_ITEM = "vector store storage"
COMMITMENT_LINE_ITEM = "scale tier commitment"

Dim = str | bool | None
GroupKey = tuple[Dim, ...]


def _weights(kind: int) -> tuple[int, ...]:
    """The 168 hourly weights of a weekly shape (index 0: Monday 00:00 UTC)."""
    out: list[int] = []
    for day in range(7):
        weekday = day < 5
        for hour in range(24):
            if kind == 0:  # office hours
                if weekday:
                    w = 100 if 8 <= hour < 18 else 40 if 6 <= hour < 22 else 8
                else:
                    w = 20 if 8 <= hour < 20 else 5
            elif kind == 1:  # a service, busier by day
                w = (100 if 8 <= hour < 20 else 60) if weekday else 50
            elif kind == 2:  # nightly batch jobs
                w = 100 if hour < 5 else 10
            else:  # weekday afternoon bursts, quiet weekends
                w = (100 if 13 <= hour < 17 else 20) if weekday else 0
            out.append(w)
    return tuple(out)


SHAPES: tuple[tuple[int, ...], ...] = tuple(_weights(k) for k in range(4))
_PREFIX: tuple[tuple[int, ...], ...] = tuple(
    tuple(sum(shape[:k]) for k in range(WEEK_HOURS + 1)) for shape in SHAPES
)
# Unix hour 0 (1970-01-01 00:00) was a Thursday: 72 hours into the week.
_EPOCH_HOUR_OF_WEEK = 72


def weight_integral(shape: int, x: int) -> int:
    """G(x): weight-seconds of `shape` from the epoch to second `x` (non-decreasing)."""
    hour, into = divmod(x, HOUR)
    n = hour + _EPOCH_HOUR_OF_WEEK
    weeks, how = divmod(n, WEEK_HOURS)
    prefix = _PREFIX[shape]
    cumulative = weeks * prefix[WEEK_HOURS] + prefix[how] - prefix[_EPOCH_HOUR_OF_WEEK]
    return cumulative * HOUR + SHAPES[shape][how] * into


@dataclass(frozen=True, slots=True)
class CostLine:
    line_item: str
    quantity_unit: str
    quantity_per_request: int
    micro_per_request: int  # micro-dollars


@dataclass(frozen=True, slots=True)
class UsageSeries:
    """Background usage of one (source, project, key, user, model, ...)."""

    source: UsageSource
    dims: tuple[Dim, ...]  # values of GROUP_FIELDS[source]
    start: int  # no usage before this second
    rate: int  # requests per hour at weight 100
    shape: int  # index into SHAPES
    per_request: tuple[int, ...]  # units per request of each METRICS[source]
    cost_lines: tuple[CostLine, ...]
    g_start: int  # weight_integral(shape, start)

    def requests_before(self, x: int, g: int) -> int:
        """C(x), given g = weight_integral(shape, x)."""
        if x <= self.start:
            return 0
        return self.rate * (g - self.g_start) // RATE_SCALE


@dataclass(frozen=True, slots=True)
class CostSeries:
    """A cost not tied to requests: a constant amount per hour (storage, a commitment)."""

    project_id: str | None
    api_key_id: str | None
    line_item: str
    quantity_unit: str | None
    start: int
    micro_per_hour: int
    quantity_per_hour: int

    def before(self, x: int) -> tuple[int, int]:
        """(micro-dollars, quantity) accrued before second `x`."""
        if x <= self.start:
            return 0, 0
        elapsed = x - self.start
        return self.micro_per_hour * elapsed // HOUR, self.quantity_per_hour * elapsed // HOUR


@dataclass(frozen=True, slots=True)
class UsageEvent:
    """Explicit usage at one second (`Organization.use_key`, `record_usage`)."""

    source: UsageSource
    at: int
    dims: tuple[Dim, ...]
    metrics: tuple[int, ...]  # per METRICS[source]
    costs: tuple[tuple[str, str, int, int], ...]  # (line_item, unit, quantity, micro)


@dataclass(frozen=True, slots=True)
class Cost:
    """A cost result: `amount` in dollars (micro-dollars exactly in `micro`)."""

    micro: int
    quantity: int | None
    quantity_unit: str | None

    @property
    def amount(self) -> float:
        return self.micro / MICRO


def cost_lines(model: str, per_request: Mapping[str, int]) -> tuple[CostLine, ...]:
    """The line items a request of `model` with these amounts costs (integer micro-dollars)."""
    lines: list[CostLine] = []
    for suffix, unit, metric, price in PRICES.get(model, ()):
        if metric == "uncached":
            quantity = per_request.get("input_tokens", 0) - per_request.get(
                "input_cached_tokens", 0
            )
        else:
            quantity = per_request.get(metric, 0)
        if quantity > 0:
            lines.append(CostLine(f"{model}, {suffix}", unit, quantity, quantity * price // 1000))
    return tuple(lines)


def align(x: int, width: int) -> int:
    """The start of the bucket of `width` seconds holding `x` (UTC, days at 00:00)."""
    return x - x % width


def bucket_starts(start: int, end: int, width: int) -> list[int]:
    first = align(start, width)
    return list(range(first, end, width)) if end > first else []


class _Filter:
    def __init__(self, fields: Sequence[str], filters: Mapping[str, Iterable[str]]) -> None:
        self.checks = [
            (fields.index(name), frozenset(values)) for name, values in filters.items() if values
        ]

    def keep(self, dims: tuple[Dim, ...]) -> bool:
        return all(dims[i] in allowed for i, allowed in self.checks)


def _cache_key(filters: Mapping[str, Iterable[str]]) -> tuple[tuple[str, frozenset[str]], ...]:
    return tuple(sorted((k, frozenset(v)) for k, v in filters.items() if v))


@dataclass(frozen=True, slots=True)
class _Columns:
    """The series of one source, column by column, for the hot loop."""

    rates: list[int]
    shapes: list[int]
    g0s: list[int]
    per: list[tuple[int, ...]]


@dataclass(frozen=True, slots=True)
class _UsagePlan:
    """Which group (slot) each series of a source adds to; -1: filtered out."""

    slots: list[int]
    keys: list[GroupKey]


class _CostPlan:
    """Group slots of the costs for one `group_by` and filter."""

    def __init__(self, group_by: tuple[str, ...], filters: Mapping[str, Iterable[str]]) -> None:
        self.group_by = group_by
        self.projects = frozenset(filters.get("project_id", ())) or None
        self.api_keys = frozenset(filters.get("api_key_id", ())) or None
        self.keys: list[GroupKey] = []
        self.units: list[str | None] = []
        self.slot_of: dict[GroupKey, int] = {}
        # per source, per series: (slot, micro per request, quantity per request) per line
        self.lines: dict[UsageSource, list[list[tuple[int, int, int]]]] = {}

    def slot(self, project_id: Dim, api_key_id: Dim, line_item: str, unit: str | None) -> int:
        if self.projects is not None and project_id not in self.projects:
            return -1
        if self.api_keys is not None and api_key_id not in self.api_keys:
            return -1
        values = {"project_id": project_id, "api_key_id": api_key_id, "line_item": line_item}
        key = tuple([values[f] for f in self.group_by])
        found = self.slot_of.get(key)
        if found is None:
            found = self.slot_of[key] = len(self.keys)
            self.keys.append(key)
            self.units.append(unit)
        return found


class UsageModel:
    """The usage and costs of an organization: series, explicit events, lateness."""

    def __init__(
        self, *, lateness: int = DEFAULT_LATENESS, cost_lateness: int = DEFAULT_COST_LATENESS
    ) -> None:
        self.lateness = lateness
        self.cost_lateness = cost_lateness
        self._series: dict[UsageSource, list[UsageSeries]] = {s: [] for s in USAGE_SOURCES}
        self._events: dict[UsageSource, list[UsageEvent]] = {s: [] for s in USAGE_SOURCES}
        self._cost_series: list[CostSeries] = []
        # Final buckets, columns and group plans; cleared on every change.
        self._cache: dict[object, object] = {}

    # -- building ----------------------------------------------------------

    def add_series(
        self,
        source: UsageSource,
        *,
        project_id: str,
        api_key_id: str | None,
        user_id: str | None,
        model: str,
        start: int,
        rate: int,
        shape: int = 0,
        per_request: Mapping[str, int],
        extra: Mapping[str, Dim] | None = None,
    ) -> UsageSeries:
        """Background usage: `rate` requests per hour at the shape's peak weight, from `start`.

        `per_request` gives every metric of the source but `num_model_requests`
        (missing ones are 0); `extra` the other grouping fields (batch, service_tier,
        size, source), which default to False / "default" / "1024x1024" /
        "image.generation".
        """
        dims = self._dims(source, project_id, user_id, api_key_id, model, extra)
        amounts = tuple(
            1 if m == "num_model_requests" else int(per_request.get(m, 0)) for m in METRICS[source]
        )
        series = UsageSeries(
            source=source,
            dims=dims,
            start=start,
            rate=rate,
            shape=shape,
            per_request=amounts,
            cost_lines=cost_lines(model, per_request),
            g_start=weight_integral(shape, start),
        )
        self._series[source].append(series)
        self._changed()
        return series

    def add_cost_series(
        self,
        line_item: str,
        *,
        project_id: str | None,
        api_key_id: str | None = None,
        start: int,
        micro_per_hour: int,
        quantity_per_hour: int = 0,
        quantity_unit: str | None = None,
    ) -> CostSeries:
        series = CostSeries(
            project_id, api_key_id, line_item, quantity_unit, start, micro_per_hour,
            quantity_per_hour,
        )  # fmt: skip
        self._cost_series.append(series)
        self._changed()
        return series

    def add_event(
        self,
        source: UsageSource,
        *,
        at: int,
        project_id: str,
        api_key_id: str | None,
        user_id: str | None,
        model: str,
        requests: int,
        metrics: Mapping[str, int],
        extra: Mapping[str, Dim] | None = None,
    ) -> UsageEvent:
        unknown = set(metrics) - set(METRICS[source])
        if unknown:
            raise ValueError(f"{source} usage has no {sorted(unknown)}")
        if requests < 0 or any(v < 0 for v in metrics.values()):
            raise ValueError("usage amounts must not be negative")
        values = tuple(
            requests if m == "num_model_requests" else int(metrics.get(m, 0))
            for m in METRICS[source]
        )
        costs = tuple(
            (line.line_item, line.quantity_unit, line.quantity_per_request, line.micro_per_request)
            for line in cost_lines(model, metrics)
        )
        event = UsageEvent(
            source, at, self._dims(source, project_id, user_id, api_key_id, model, extra), values,
            costs,
        )  # fmt: skip
        self._events[source].append(event)
        self._changed()
        return event

    def series(self, source: UsageSource) -> list[UsageSeries]:
        return list(self._series[source])

    def events(self, source: UsageSource) -> list[UsageEvent]:
        return list(self._events[source])

    def cost_series(self) -> list[CostSeries]:
        return list(self._cost_series)

    def series_count(self) -> int:
        return sum(len(s) for s in self._series.values())

    # -- what tests know: final and reported values ------------------------

    def final_values(
        self,
        source: UsageSource,
        start: int,
        end: int,
        width: BucketWidth = "1d",
        group_by: Sequence[str] = (),
        filters: Mapping[str, Iterable[str]] | None = None,
    ) -> dict[int, dict[GroupKey, dict[str, int]]]:
        """bucket start -> group (values of `group_by`, in its order) -> metric -> the
        FINAL value, what the reported value converges to. Empty groups are left out."""
        return self.reported_values(source, start, end, width, group_by, filters, now=None)

    def reported_values(
        self,
        source: UsageSource,
        start: int,
        end: int,
        width: BucketWidth = "1d",
        group_by: Sequence[str] = (),
        filters: Mapping[str, Iterable[str]] | None = None,
        *,
        now: int | None,
    ) -> dict[int, dict[GroupKey, dict[str, int]]]:
        """What the API reports at `now` (None: the final values), as `final_values`."""
        seconds = WIDTH_SECONDS[width]
        metrics = METRICS[source]
        return {
            s: {k: dict(zip(metrics, v, strict=True)) for k, v in groups.items()}
            for s in bucket_starts(start, end, seconds)
            if (groups := self.usage_bucket(source, s, s + seconds, group_by, filters or {}, now))
        }

    def final_costs(
        self,
        start: int,
        end: int,
        group_by: Sequence[str] = (),
        filters: Mapping[str, Iterable[str]] | None = None,
    ) -> dict[int, dict[GroupKey, Cost]]:
        """Daily bucket start -> group -> the FINAL cost (exact micro-dollars in `.micro`)."""
        return self.reported_costs(start, end, group_by, filters, now=None)

    def reported_costs(
        self,
        start: int,
        end: int,
        group_by: Sequence[str] = (),
        filters: Mapping[str, Iterable[str]] | None = None,
        *,
        now: int | None,
    ) -> dict[int, dict[GroupKey, Cost]]:
        return {
            s: groups
            for s in bucket_starts(start, end, DAY)
            if (groups := self.cost_bucket(s, s + DAY, group_by, filters or {}, now))
        }

    # -- one bucket ---------------------------------------------------------

    def usage_bucket(
        self,
        source: UsageSource,
        start: int,
        end: int,
        group_by: Sequence[str],
        filters: Mapping[str, Iterable[str]],
        now: int | None,
    ) -> dict[GroupKey, list[int]]:
        """Group -> metric values (METRICS order) of the bucket [start, end) at `now`
        (None: final). Groups with nothing are left out."""
        final = now is None or end + self.lateness <= now
        cache_key = ("usage", source, start, end, tuple(group_by), _cache_key(filters))
        if final and cache_key in self._cache:
            return self._cache[cache_key]  # type: ignore[return-value]
        plan = self._usage_plan(source, tuple(group_by), filters)
        totals: list[list[int] | None] = [None] * len(plan.keys)
        twice = self._twice(source, start, end, None if final else now, self.lateness)
        for tw, slot, per in zip(twice, plan.slots, self._columns(source).per, strict=True):
            if tw < 2 or slot < 0:
                continue
            # Every metric is per_request x the requests reported, floor((a + b) / 2).
            acc = totals[slot]
            if acc is None:
                totals[slot] = list(map((tw >> 1).__mul__, per))
            else:
                for i, p in enumerate(per):
                    acc[i] += p * (tw >> 1)
        groups = {plan.keys[i]: acc for i, acc in enumerate(totals) if acc is not None}
        fields = GROUP_FIELDS[source]
        index = [fields.index(f) for f in group_by]
        keep = _Filter(fields, filters)
        for event in self._events[source]:
            if not start <= event.at < end or (keep.checks and not keep.keep(event.dims)):
                continue
            halves = 2 if final else _halves(event.at, now, self.lateness)
            if halves == 0:
                continue
            key = tuple([event.dims[i] for i in index])
            values = [m * halves // 2 for m in event.metrics]
            found = groups.get(key)
            if found is None:
                groups[key] = values
            else:
                for i, v in enumerate(values):
                    found[i] += v
        result = {k: v for k, v in groups.items() if any(v)}
        if final:
            self._remember(cache_key, result)
        return result

    def cost_bucket(
        self,
        start: int,
        end: int,
        group_by: Sequence[str],
        filters: Mapping[str, Iterable[str]],
        now: int | None,
    ) -> dict[GroupKey, Cost]:
        """Group -> cost of the daily bucket [start, end) at `now` (None: final)."""
        final = now is None or end + self.cost_lateness <= now
        cache_key = ("costs", start, end, tuple(group_by), _cache_key(filters))
        if final and cache_key in self._cache:
            return self._cache[cache_key]  # type: ignore[return-value]
        at = None if final else now
        lateness = self.cost_lateness
        plan = self._cost_plan(tuple(group_by), filters)
        for source in USAGE_SOURCES:  # explicit usage may bring new groups
            for event in self._events[source]:
                if start <= event.at < end:
                    for line_item, event_unit, _, _ in event.costs:
                        plan.slot(event.dims[0], event.dims[2], line_item, event_unit)
        micro = [0] * len(plan.keys)
        quantity = [0] * len(plan.keys)
        for source in USAGE_SOURCES:
            twice = self._twice(source, start, end, at, lateness)
            for tw, lines in zip(twice, plan.lines[source], strict=True):
                if tw == 0:
                    continue
                requests = tw >> 1
                for slot, micro_per_request, quantity_per_request in lines:
                    micro[slot] += micro_per_request * requests
                    quantity[slot] += quantity_per_request * requests
            for event in self._events[source]:
                if not start <= event.at < end:
                    continue
                halves = 2 if final else _halves(event.at, now, lateness)
                for line_item, line_unit, qty, amount in event.costs:
                    slot = plan.slot(event.dims[0], event.dims[2], line_item, line_unit)
                    if slot >= 0:
                        micro[slot] += amount * halves // 2
                        quantity[slot] += qty * halves // 2
        for cost in self._cost_series:
            slot = plan.slot(cost.project_id, cost.api_key_id, cost.line_item, cost.quantity_unit)
            if slot < 0:
                continue
            cuts = self._cuts(start, end, at, lateness)
            base_m, base_q = cost.before(cuts[0])
            a_m, a_q = cost.before(cuts[2])
            b_m, b_q = cost.before(cuts[3])
            micro[slot] += (a_m + b_m - 2 * base_m) // 2
            quantity[slot] += (a_q + b_q - 2 * base_q) // 2
        by_line = "line_item" in group_by
        result: dict[GroupKey, Cost] = {}
        for slot, key in enumerate(plan.keys):
            if micro[slot] == 0 and quantity[slot] == 0:
                continue
            unit: str | None = plan.units[slot] if by_line else None
            result[key] = Cost(micro[slot], quantity[slot] if unit is not None else None, unit)
        if final:
            self._remember(cache_key, result)
        return result

    def _twice(
        self, source: UsageSource, start: int, end: int, now: int | None, lateness: int
    ) -> list[int]:
        """Twice the requests every series of `source` reports in [start, end) at `now`
        (None: final), in series order: occurred(now) + occurred(now - lateness)."""
        columns = self._columns(source)
        cuts = self._cuts(start, end, now, lateness)
        shapes = range(len(SHAPES))
        g_start = [weight_integral(shape, cuts[0]) for shape in shapes]
        out: list[int] = []
        append = out.append
        scale = RATE_SCALE
        if now is None:
            g_end = [weight_integral(shape, cuts[1]) for shape in shapes]
            for rate, shape, g0 in zip(columns.rates, columns.shapes, columns.g0s, strict=True):
                high = rate * (g_end[shape] - g0) // scale
                if high <= 0:
                    append(0)
                    continue
                low = rate * (g_start[shape] - g0) // scale
                append(2 * (high - low) if low > 0 else 2 * high)
            return out
        g_now = [weight_integral(shape, cuts[2]) for shape in shapes]
        g_late = [weight_integral(shape, cuts[3]) for shape in shapes]
        for rate, shape, g0 in zip(columns.rates, columns.shapes, columns.g0s, strict=True):
            high = rate * (g_now[shape] - g0) // scale
            if high <= 0:
                append(0)
                continue
            late = rate * (g_late[shape] - g0) // scale
            low = rate * (g_start[shape] - g0) // scale
            low = low if low > 0 else 0
            append(high + (late if late > low else low) - 2 * low)
        return out

    def _columns(self, source: UsageSource) -> _Columns:
        key = ("columns", source)
        found = self._cache.get(key)
        if found is None:
            series = self._series[source]
            found = _Columns(
                rates=[s.rate for s in series],
                shapes=[s.shape for s in series],
                g0s=[s.g_start for s in series],
                per=[s.per_request for s in series],
            )
            self._cache[key] = found
        return found  # type: ignore[return-value]

    def _usage_plan(
        self, source: UsageSource, group_by: tuple[str, ...], filters: Mapping[str, Iterable[str]]
    ) -> _UsagePlan:
        key = ("usage-plan", source, group_by, _cache_key(filters))
        found = self._cache.get(key)
        if found is None:
            fields = GROUP_FIELDS[source]
            index = [fields.index(f) for f in group_by]
            keep = _Filter(fields, filters)
            slot_of: dict[GroupKey, int] = {}
            slots: list[int] = []
            for series in self._series[source]:
                if keep.checks and not keep.keep(series.dims):
                    slots.append(-1)
                    continue
                group = tuple([series.dims[i] for i in index])
                slots.append(slot_of.setdefault(group, len(slot_of)))
            found = _UsagePlan(slots, list(slot_of))
            self._cache[key] = found
        return found  # type: ignore[return-value]

    def _cost_plan(
        self, group_by: tuple[str, ...], filters: Mapping[str, Iterable[str]]
    ) -> _CostPlan:
        key = ("cost-plan", group_by, _cache_key(filters))
        found = self._cache.get(key)
        if found is None:
            found = _CostPlan(group_by, filters)
            for cost in self._cost_series:
                found.slot(cost.project_id, cost.api_key_id, cost.line_item, cost.quantity_unit)
            for source in USAGE_SOURCES:
                found.lines[source] = [
                    [
                        (slot, line.micro_per_request, line.quantity_per_request)
                        for line in series.cost_lines
                        if (
                            slot := found.slot(
                                series.dims[0], series.dims[2], line.line_item, line.quantity_unit
                            )
                        )
                        >= 0
                    ]
                    for series in self._series[source]
                ]
            self._cache[key] = found
        return found  # type: ignore[return-value]

    # -- internals ------------------------------------------------------------

    @staticmethod
    def _cuts(start: int, end: int, now: int | None, lateness: int) -> list[int]:
        """[start, end, then (if not final) the two clamped cut-offs now and now - lateness]."""
        if now is None:
            return [start, end, end, end]
        return [start, end, min(max(now, start), end), min(max(now - lateness, start), end)]

    def _dims(
        self,
        source: UsageSource,
        project_id: str,
        user_id: str | None,
        api_key_id: str | None,
        model: str,
        extra: Mapping[str, Dim] | None,
    ) -> tuple[Dim, ...]:
        given = dict(extra or {})
        base: dict[str, Dim] = {
            "project_id": project_id,
            "user_id": user_id,
            "api_key_id": api_key_id,
            "model": model,
            "batch": given.pop("batch", False),
            "service_tier": given.pop("service_tier", "default"),
            "size": given.pop("size", "1024x1024"),
            "source": given.pop("source", "image.generation"),
        }
        if given:
            raise ValueError(f"unknown grouping fields {sorted(given)}")
        return tuple(base[f] for f in GROUP_FIELDS[source])

    def _changed(self) -> None:
        self._cache.clear()

    def cached(self, key: object) -> object | None:
        """What `remember` kept under `key` since the last change, or None."""
        return self._cache.get(key)

    def remember(self, key: object, value: object) -> None:
        """Keep a value derived from final buckets (the app keeps their encoded results)
        until the usage changes."""
        self._remember(key, value)

    def _remember(self, key: object, value: object) -> None:
        if len(self._cache) > 1_024:
            kept = (_Columns, _UsagePlan, _CostPlan)
            self._cache = {k: v for k, v in self._cache.items() if isinstance(v, kept)}
        self._cache[key] = value


def _halves(at: int, now: int | None, lateness: int) -> int:
    """How many halves of usage made at second `at` are reported at `now` (0..2)."""
    if now is None:
        return 2
    return (1 if at < now else 0) + (1 if at < now - lateness else 0)


def series_hash(*parts: object) -> int:
    """A stable 32-bit hash (not Python's salted `hash`)."""
    return zlib.crc32("/".join(map(str, parts)).encode("utf-8"))


@dataclass
class UsagePlan:
    """How a generated organization uses its keys (see OrganizationSpec)."""

    sources: tuple[UsageSource, ...] = USAGE_SOURCES
    models_per_source: int = 2
    seed: int = 0
    playground_every: int = 3  # every n-th project with usage also has keyless usage


_RATES = (1, 2, 3, 5, 8, 13, 20, 30, 50, 80, 120)


def plan_series(
    usage: UsageModel,
    plan: UsagePlan,
    *,
    project_id: str,
    api_key_id: str | None,
    user_id: str | None,
    start: int,
    index: int,
) -> None:
    """Background series of one key (or of keyless usage): `models_per_source` models of
    each source, rotated by `index` so that every model is used somewhere."""
    for source in plan.sources:
        models = MODELS[source]
        for m in range(min(plan.models_per_source, len(models))):
            model = models[(index + m) % len(models)]
            h = series_hash(plan.seed, project_id, api_key_id, source, model)
            per_request, extra = _per_request(source, model, h)
            usage.add_series(
                source,
                project_id=project_id,
                api_key_id=api_key_id,
                user_id=user_id,
                model=model,
                start=start,
                rate=_RATES[h % len(_RATES)],
                shape=(h >> 4) % len(SHAPES),
                per_request=per_request,
                extra=extra,
            )


def _per_request(source: UsageSource, model: str, h: int) -> tuple[dict[str, int], dict[str, Dim]]:
    bits = h >> 8
    extra: dict[str, Dim] = {}
    if source == "completions":
        inputs = 200 + bits % 3_800
        audio = 120 if model == "gpt-4o" and (bits >> 12) % 4 == 0 else 0
        extra = {
            "batch": (bits >> 14) % 5 == 0,
            "service_tier": "flex" if (bits >> 17) % 6 == 0 else "default",
        }
        return {
            "input_tokens": inputs,
            "input_cached_tokens": inputs * ((bits >> 3) % 6) // 10,
            "output_tokens": 50 + (bits >> 5) % 1_450,
            "input_audio_tokens": audio,
            "output_audio_tokens": audio // 2,
        }, extra
    if source in ("embeddings", "moderations"):
        return {"input_tokens": 20 + bits % 1_980}, extra
    if source == "images":
        sizes = ("1024x1024", "1024x1792", "512x512")
        kinds = ("image.generation", "image.edit", "image.generation")
        extra = {"size": sizes[bits % 3], "source": kinds[(bits >> 2) % 3]}
        return {"images": 1 + (bits >> 4) % 4}, extra
    if source == "audio_speeches":
        return {"characters": 100 + bits % 2_900}, extra
    return {"seconds": 5 + bits % 595}, extra
