"""Scrape cost: the renderer behind /metrics against the plain prometheus_client way.

Both render the same snapshot at the same instant, with the exporter's own metrics
after the inventory, so their outputs must parse to exactly the same samples.
"""

from __future__ import annotations

import gzip
import math
import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from bench.baseline import BaselineCollector
from exporter.collectors.api_keys import ProjectKeys
from exporter.collectors.base import AnyCollector
from exporter.health import ExporterHealth
from exporter.rendering.renderer import SnapshotRenderer
from exporter.snapshot import Snapshot

Encoder = Callable[[Collector], bytes]
Samples = set[tuple[str, frozenset[tuple[str, str]], float]]
# The baseline compresses like the exporter did before the renderer: gzip level 6.
BASELINE_GZIP_LEVEL = 6


def openmetrics(collector: Collector) -> bytes:
    return generate_openmetrics(collector)  # type: ignore[no-untyped-call,no-any-return]


class ReferenceView:
    """The baseline: a straightforward GaugeMetricFamily collector, then the health."""

    def __init__(self, collector: BaselineCollector, health: ExporterHealth) -> None:
        self._collector = collector
        self._health = health

    def collect(self) -> Iterable[Metric]:
        yield from self._collector.collect()
        yield from self._health.collect()


def ours(
    renderer: SnapshotRenderer,
    inventory: Snapshot,
    health: ExporterHealth,
    *,
    now: float,
    encoder: Encoder,
    use_gzip: bool,
) -> tuple[bytes, ...]:
    """What the metrics handler produces (the pieces it writes, in order)."""
    return renderer.render(
        inventory,
        now=now,
        tail=encoder(health),
        gzip=use_gzip,
        openmetrics=encoder is openmetrics,
    )


def baseline(
    collectors: Sequence[AnyCollector],
    inventory: Snapshot,
    health: ExporterHealth,
    *,
    now: float,
    ttl: float,
    encoder: Encoder,
) -> bytes:
    ttls = {collector.name: ttl for collector in collectors}
    collector = BaselineCollector(collectors, inventory, now=now, ttls=ttls)
    return encoder(ReferenceView(collector, health))


def parse(text: str, *, is_openmetrics: bool) -> Samples:
    families = (
        openmetrics_families(text)  # type: ignore[no-untyped-call]
        if is_openmetrics
        else text_string_to_metric_families(text)
    )
    return {
        (sample.name, frozenset(sample.labels.items()), sample.value)
        for family in families
        for sample in family.samples
    }


def same_samples(ours_text: bytes, baseline_text: bytes, *, is_openmetrics: bool) -> bool:
    return parse(ours_text.decode(), is_openmetrics=is_openmetrics) == parse(
        baseline_text.decode(), is_openmetrics=is_openmetrics
    )


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest rank: with fewer than 1/(1-fraction) values, p99 is the slowest run."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def _timed(action: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


def measure(
    collectors: Sequence[AnyCollector],
    inventory: Snapshot,
    health: ExporterHealth,
    *,
    runs: int,
    baseline_runs: int,
    check: bool,
    ttl: float = 300.0,
) -> dict[str, Any]:
    """Medians and p99s, ours and baseline, side by side; bytes; the sample check."""
    renderer = SnapshotRenderer(collectors, ttls={c.name: ttl for c in collectors})
    start = math.floor(time.time())
    variants: dict[str, tuple[Encoder, bool]] = {
        "text": (generate_latest, False),
        "text_gzip": (generate_latest, True),
        "om_gzip": (openmetrics, True),
    }
    result: dict[str, Any] = {}
    # The first scrape of a snapshot prepares its text (and the first gzip one compresses
    # the fixed part): once per refresh, reported apart from the warm scrapes.
    result["prepare_s"], _ = _timed(
        lambda: ours(
            renderer, inventory, health, now=start, encoder=generate_latest, use_gzip=False
        )
    )
    result["prepare_gzip_s"], _ = _timed(
        lambda: ours(renderer, inventory, health, now=start, encoder=generate_latest, use_gzip=True)
    )
    timings: dict[str, list[float]] = {name: [] for name in variants}
    base: dict[str, list[float]] = {name: [] for name in variants}
    sizes = {"text": 0, "text_gzip": 0}

    def baseline_run() -> None:
        seconds, text = _timed(
            lambda: baseline(
                collectors, inventory, health, now=start, ttl=ttl, encoder=generate_latest
            )
        )
        squeeze, compressed = _timed(lambda: gzip.compress(text, compresslevel=BASELINE_GZIP_LEVEL))
        base["text"].append(seconds)
        base["text_gzip"].append(seconds + squeeze)
        sizes.update(text=len(text), text_gzip=len(compressed))
        seconds, text = _timed(
            lambda: baseline(collectors, inventory, health, now=start, ttl=ttl, encoder=openmetrics)
        )
        squeeze, _ = _timed(lambda: gzip.compress(text, compresslevel=BASELINE_GZIP_LEVEL))
        base["om_gzip"].append(seconds + squeeze)

    # The baseline's runs are spread among ours, so both meet the same neighbours on a
    # shared machine. A new second for every scrape of ours: each one formats and
    # compresses its ages anew, none is served from the per-second reuse.
    baseline_runs = max(1, min(baseline_runs, runs))
    baseline_at = {run * runs // baseline_runs for run in range(baseline_runs)}
    for run in range(runs):
        if run in baseline_at:
            baseline_run()
        for index, (name, (encoder, use_gzip)) in enumerate(variants.items()):
            now = start + 1 + run * len(variants) + index
            seconds, _ = _timed(
                lambda e=encoder, g=use_gzip, n=now: ours(  # type: ignore[misc]
                    renderer, inventory, health, now=n, encoder=e, use_gzip=g
                )
            )
            timings[name].append(seconds)
    # A scrape in the same second as another reuses its compressed ages.
    same_second, _ = _timed(
        lambda: ours(
            renderer,
            inventory,
            health,
            now=start + runs * len(variants),
            encoder=openmetrics,
            use_gzip=True,
        )
    )
    for name in variants:
        result[name] = {
            "p50": statistics.median(timings[name]),
            "p99": percentile(timings[name], 0.99),
            "baseline_p50": statistics.median(base[name]),
            "baseline_p99": percentile(base[name], 0.99),
        }
    result["same_second_s"] = same_second
    plain = b"".join(
        ours(renderer, inventory, health, now=start, encoder=generate_latest, use_gzip=False)
    )
    compressed = b"".join(
        ours(renderer, inventory, health, now=start, encoder=openmetrics, use_gzip=True)
    )
    result["bytes"] = len(plain)
    result["bytes_gzip"] = len(compressed)
    result["baseline_bytes"] = sizes["text"]
    result["baseline_bytes_gzip"] = sizes["text_gzip"]
    lines = plain.splitlines()
    if "api_keys" in inventory:
        inventory_series = sum(1 for line in lines if line.startswith(b"openai_api_key"))
        keys: ProjectKeys = inventory["api_keys"].rows
        result["series_per_key"] = inventory_series / max(1, keys.key_count)
    result["usage_series"] = sum(1 for line in lines if line.startswith(b"openai_usage_"))
    result["series"] = sum(1 for line in lines if not line.startswith(b"#"))
    if check:
        text_ok = same_samples(
            plain,
            baseline(collectors, inventory, health, now=start, ttl=ttl, encoder=generate_latest),
            is_openmetrics=False,
        )
        om_ok = same_samples(
            gzip.decompress(compressed),
            baseline(collectors, inventory, health, now=start, ttl=ttl, encoder=openmetrics),
            is_openmetrics=True,
        )
        result["same_samples"] = text_ok and om_ok
    return result
