"""The plain prometheus_client way of rendering a snapshot: the benchmark's baseline and
the tests' reference for the renderer behind /metrics.

Built fresh from one snapshot with ``GaugeMetricFamily`` / ``CounterMetricFamily`` and
the collectors' own declarations and samples, so both must give the same samples.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from exporter.collectors.base import AnyCollector
from exporter.rendering.renderer import cached_note, scrape_second
from exporter.snapshot import Snapshot


class BaselineCollector:
    """Renders one snapshot as of ``now`` (unix seconds; ages use whole seconds)."""

    def __init__(
        self,
        collectors: Sequence[AnyCollector],
        snapshot: Snapshot,
        *,
        now: float,
        ttls: Mapping[str, float],
    ) -> None:
        self._collectors = collectors
        self._snapshot = snapshot
        self._now = scrape_second(now)
        self._ttls = ttls

    def collect(self) -> Iterator[Metric]:
        for collector in self._collectors:
            state = self._snapshot.get(collector.name)
            if state is None:
                continue
            note = cached_note(self._ttls[collector.name])
            for family, samples in collector.samples(state.rows, self._snapshot):
                metric: GaugeMetricFamily | CounterMetricFamily
                if family.type == "counter":
                    metric = CounterMetricFamily(
                        family.name, family.help + note, labels=family.labels
                    )
                else:
                    metric = GaugeMetricFamily(
                        family.name, family.help + note, labels=family.labels
                    )
                for values, value in samples:
                    if family.since:
                        value = max(0, self._now - int(value))
                    metric.add_metric(list(values), value)
                yield metric
