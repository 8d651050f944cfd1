"""What ``/metrics`` writes for a snapshot: each collector's text rendered once per state.

A scrape of a large organization is almost all label text, and that text only changes
when a collector's state does. So, once per state (lazily, at its first scrape), the
renderer writes every series whose value the state fixes and keeps that text
compressed, and turns the families whose values move with the clock (the declared
``since`` families: ages, idle times) into ``%d`` templates holding their label text.
A scrape then only formats one integer per such series and appends it, compressed, to
the compressed fixed text; the pieces of every collector and the tail (the exporter's
own metrics) form one ordinary gzip member. A scrape without gzip inflates the fixed
text instead; keeping it compressed is what holds memory under 2 KB per key.

Everything is driven by the collectors' ``Family`` declarations: names, help, types and
labels. Ages are whole seconds (``floor(now)`` minus the API's whole-second
timestamps), so within one second their text cannot change and its compressed form is
reused by concurrent scrapes. Gauge text is the same in the 0.0.4 text format and in
OpenMetrics; a counter's header is not (``x_total`` vs ``x``), so a collector with
counter families keeps one fixed text per format.
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from exporter.collectors.base import AnyCollector, Family, LabelValues, Number
from exporter.durations import format_duration
from exporter.rendering.gzip_members import (
    NOTHING,
    Deflated,
    Deflater,
    gzip_member,
    inflate,
)
from exporter.snapshot import ResourceState, Snapshot

_FIXED_LEVEL = 6  # compressed once per state: worth a better ratio
_MOVING_LEVEL = 1  # compressed at every new second: speed first (~10% larger)
_LINES_PER_CHUNK = 4096


def escape_label_value(value: str) -> str:
    """Backslash, newline and double quote escaped, as both exposition formats want."""
    if "\\" in value or "\n" in value or '"' in value:
        return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
    return value  # the common case: nothing to escape, no copy


def cached_note(ttl: float) -> str:
    """Appended to the help of every collector family: its values come from the cache."""
    return (
        f" Cached: from a snapshot of the Admin API refreshed at most every "
        f"{format_duration(ttl)}, so up to that old (see "
        "openai_exporter_collector_last_success_timestamp_seconds)."
    )


def scrape_second(now: float) -> int:
    """The time ages are computed at: whole seconds, like the API's own timestamps."""
    return math.floor(now)


def format_value(value: Number) -> str:
    """A sample value as both formats write it (integers exactly, floats in full)."""
    if value.__class__ is int:  # the common case (timestamps, counts), checked first
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(value)


@dataclass(frozen=True, slots=True)
class _Since:
    """One ``since`` family as a template: label text fixed, values per scrape."""

    header: bytes
    template: bytes
    since: tuple[int, ...]


@dataclass(slots=True)
class _Prepared:
    """Everything about one collector's state that no scrape changes."""

    states: tuple[ResourceState[Any] | None, ...]  # held for the identity check
    gauges: Deflated
    # By openmetrics: a counter's header differs by format, its lines do not (each
    # family's lines are compressed once and shared by both formats' pieces).
    counters: dict[bool, tuple[Deflated, ...]]
    moving: tuple[_Since, ...]
    newest: int  # the latest timestamp of the since families: ages below it need clamping
    moving_deflated: tuple[int, Deflated] | None = None  # (second, its text) last gzipped


@dataclass
class _Headers:
    text: dict[str, bytes] = field(default_factory=dict)
    openmetrics: dict[str, bytes] = field(default_factory=dict)


class SnapshotRenderer:
    """Renders snapshots for one app; keeps the prepared text of each collector's latest
    state only. Thread-safe: scrapes render in executor threads."""

    def __init__(self, collectors: Sequence[AnyCollector], *, ttls: Mapping[str, float]) -> None:
        self._collectors = tuple(collectors)
        self._headers: dict[str, _Headers] = {}
        for collector in self._collectors:
            note = cached_note(ttls[collector.name])
            headers = self._headers[collector.name] = _Headers()
            for family in collector.families:
                headers.text[family.name] = _header(family, note, openmetrics=False)
                headers.openmetrics[family.name] = _header(family, note, openmetrics=True)
        self._prepared: dict[str, _Prepared] = {}
        self._lock = threading.Lock()

    def render(
        self,
        snapshot: Snapshot,
        *,
        now: float,
        tail: bytes = b"",
        gzip: bool = False,
        openmetrics: bool = False,
    ) -> tuple[bytes, ...]:
        """The body as pieces to write in order; ``tail`` (already encoded) goes last.

        With ``gzip`` the pieces together are one gzip member of the same text.
        """
        second = scrape_second(now)
        if gzip:
            pieces: list[Deflated] = []
            for collector in self._collectors:
                prepared = self._prepare(collector, snapshot)
                if prepared is not None:
                    pieces.append(prepared.gauges)
                    pieces.extend(prepared.counters[openmetrics])
                    pieces.append(self._moving_deflated(prepared, second))
            return gzip_member(pieces, tail, _FIXED_LEVEL)
        parts: list[bytes] = []
        for collector in self._collectors:
            prepared = self._prepare(collector, snapshot)
            if prepared is not None:
                parts.append(inflate(prepared.gauges))
                parts.extend(inflate(piece) for piece in prepared.counters[openmetrics])
                parts.extend(_moving_text(prepared, second))
        parts.append(tail)
        return tuple(parts)

    def _prepare(self, collector: AnyCollector, snapshot: Snapshot) -> _Prepared | None:
        own = snapshot.get(collector.name)
        if own is None:
            return None
        states = (own, *(snapshot.get(name) for name in collector.reads))
        with self._lock:  # one preparation per state, however many scrapes wait for it
            prepared = self._prepared.get(collector.name)
            if prepared is None or not _same(prepared.states, states):
                self._prepared.pop(collector.name, None)  # let the old text go first
                prepared = self._build(collector, own, states, snapshot)
                self._prepared[collector.name] = prepared
            return prepared

    def _moving_deflated(self, prepared: _Prepared, second: int) -> Deflated:
        if not prepared.moving:
            return NOTHING
        with self._lock:  # one rendering per second, however many scrapes share it
            cached = prepared.moving_deflated
            if cached is None or cached[0] != second:
                deflater = Deflater(_MOVING_LEVEL)
                for text in _moving_text(prepared, second):
                    deflater.write(text)
                cached = prepared.moving_deflated = (second, deflater.flush())
            return cached[1]

    def _build(
        self,
        collector: AnyCollector,
        own: ResourceState[Any],
        states: tuple[ResourceState[Any] | None, ...],
        snapshot: Snapshot,
    ) -> _Prepared:
        headers = self._headers[collector.name]
        labels = _LabelTexts(collector.families)
        fixed_text = Deflater(_FIXED_LEVEL)
        counters: list[tuple[Family, list[str]]] = []
        moving: list[_Since] = []
        newest = 0
        for family, samples in collector.samples(own.rows, snapshot):
            if family.since:
                template, since = _since_template(family, samples, labels)
                newest = max(newest, max(since, default=0))
                moving.append(_Since(headers.text[family.name], template, since))
            elif family.type == "counter":
                counters.append((family, list(_lines(family, samples, labels, "_total"))))
            else:
                fixed_text.write(headers.text[family.name])
                fixed_text.write_lines(_lines(family, samples, labels, ""))
        by_format: dict[bool, list[Deflated]] = {False: [], True: []}
        for family, lines in counters:
            body = Deflater(_FIXED_LEVEL)
            body.write_lines(lines)
            shared = body.flush()
            for openmetrics, header in ((False, headers.text), (True, headers.openmetrics)):
                by_format[openmetrics].append(_deflated(header[family.name]))
                by_format[openmetrics].append(shared)
        return _Prepared(
            states,
            fixed_text.flush(),
            {fmt: tuple(pieces) for fmt, pieces in by_format.items()},
            tuple(moving),
            newest,
        )


def _deflated(text: bytes) -> Deflated:
    deflater = Deflater(_FIXED_LEVEL)
    deflater.write(text)
    return deflater.flush()


class _LabelTexts:
    """``{a="x",b="y"}`` for label values. The text of a label set that several families
    share (the key families' ``project_id``/``api_key_id``) is built once per state;
    the others, unique per series, are built as they are written and not kept."""

    def __init__(self, families: Sequence[Family]) -> None:
        counts = Counter(family.labels for family in families)
        self._shared: dict[tuple[str, ...], dict[LabelValues, str]] = {
            labels: {} for labels, count in counts.items() if count > 1
        }
        self._formats: dict[tuple[str, ...], str] = {}

    def shared(self, family: Family) -> dict[LabelValues, str] | None:
        """The texts already built for the family's label set, if several families share it."""
        return self._shared.get(family.labels)

    def of(self, family: Family, values: LabelValues) -> str:
        labels = family.labels
        shared = self._shared.get(labels)
        if shared is not None and (text := shared.get(values)) is not None:
            return text
        if len(values) != len(labels):
            raise ValueError(f"{family.name}: {len(values)} values for {labels}")
        form = self._formats.get(labels)
        if form is None:
            inner = ",".join(f'{name}="{{}}"' for name in labels)
            form = self._formats[labels] = "{{" + inner + "}}" if inner else ""
        text = form.format(*[escape_label_value(value) for value in values])
        if shared is not None:
            shared[values] = text
        return text


def _lines(
    family: Family,
    samples: Iterable[tuple[LabelValues, Number]],
    labels: _LabelTexts,
    suffix: str,
) -> Iterable[str]:
    name = family.name + suffix
    shared = labels.shared(family)
    of = labels.of
    for values, value in samples:
        text = shared.get(values) if shared is not None else None
        if text is None:
            text = of(family, values)
        number = str(value) if value.__class__ is int else format_value(value)
        yield f"{name}{text} {number}\n"


def _since_template(
    family: Family, samples: Iterable[tuple[LabelValues, Number]], labels: _LabelTexts
) -> tuple[bytes, tuple[int, ...]]:
    """The family as one ``%d`` template (built a chunk of lines at a time, so no list
    of every line exists at once) and the timestamps its values count from."""
    shared = labels.shared(family) or {}
    text = bytearray()
    since: list[int] = []
    chunk: list[str] = []
    for values, at in samples:
        label = shared.get(values) or labels.of(family, values)
        # The template is %-formatted: a literal % in a label must be doubled.
        chunk.append(f"{family.name}{label.replace('%', '%%')} %d\n")
        since.append(int(at))
        if len(chunk) == _LINES_PER_CHUNK:
            text += "".join(chunk).encode()
            chunk.clear()
    text += "".join(chunk).encode()
    return bytes(text), tuple(since)


def _moving_text(prepared: _Prepared, second: int) -> list[bytes]:
    texts = []
    for family in prepared.moving:
        if second >= prepared.newest:
            ages = tuple([second - at for at in family.since])
        else:  # a timestamp in the future (clock skew): ages never go negative
            ages = tuple([max(0, second - at) for at in family.since])
        texts.append(family.header + family.template % ages)
    return texts


def _same(
    held: tuple[ResourceState[Any] | None, ...], states: tuple[ResourceState[Any] | None, ...]
) -> bool:
    return len(held) == len(states) and all(a is b for a, b in zip(held, states, strict=True))


def _header(family: Family, note: str, *, openmetrics: bool) -> bytes:
    help_text = family.help + note
    # The text format escapes \\ and newline in HELP, OpenMetrics also ": with none of
    # them present, one header serves both formats.
    if any(char in help_text for char in '\\\n"'):
        raise ValueError(f"help of {family.name} needs format-specific escaping")
    name = family.name
    if family.type == "counter" and not openmetrics:
        name += "_total"  # the 0.0.4 text format names a counter family with its suffix
    return f"# HELP {name} {help_text}\n# TYPE {name} {family.type}\n".encode()
