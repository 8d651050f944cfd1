"""The exporter's own health: direct instrumentation, one instance per app.

Per collector, as node_exporter does it (``node_scrape_collector_success``): whether its
last refresh succeeded, when one last did, how long the last took, refreshes by result
and failures by reason; and requests by endpoint and status. Counters are created
unregistered and exposed through ``collect``, so each app (and each test) has its own
and nothing global needs resetting. Every label pair that can occur exists at 0 from
the start, so ``increase()`` sees the first failure too.

Nothing upstream imports this module: the cache reports through ``record`` and the
client through ``observe_request``, both plain callables.
"""

from __future__ import annotations

import platform
from collections.abc import Iterable, Mapping, Sequence

from prometheus_client import Counter
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from exporter import __version__
from exporter.snapshot import REFRESH_RESULTS, RefreshReport
from exporter.upstream.errors import ERROR_REASONS

# Present from the start at 0, so increase() sees the first 429 too.
COMMON_CODES = ("200", "429", "error")


def _without_created(families: Iterable[Metric]) -> Iterable[Metric]:
    """Counter families minus the ``*_created`` samples prometheus_client adds.

    They double the series of every counter and nobody graphs them; turning them
    off globally (``disable_created_metrics``) would be process-wide state.
    """
    for family in families:
        kept = Metric(family.name, family.documentation, family.type, family.unit)
        kept.samples = [sample for sample in family.samples if not sample.name.endswith("_created")]
        yield kept


class ExporterHealth:
    def __init__(
        self,
        collectors: Sequence[str],
        endpoints: Sequence[str],
        *,
        outside_up: Sequence[str] = (),
    ) -> None:
        """``outside_up``: collectors whose failures leave ``openai_up`` alone (the
        audit log, which an organization may have switched off)."""
        self.collectors = tuple(collectors)
        self._up_collectors = tuple(name for name in collectors if name not in outside_up)
        self.refreshes = Counter(
            "openai_exporter_refreshes",
            "Refreshes from the Admin API, by collector and result.",
            ["collector", "result"],
            registry=None,
        )
        self.refresh_errors = Counter(
            "openai_exporter_refresh_errors",
            "Upstream listings that failed after their retries, by collector and reason.",
            ["collector", "reason"],
            registry=None,
        )
        self.api_requests = Counter(
            "openai_exporter_api_requests",
            "Requests sent to the Admin API, by endpoint and HTTP status (error: no response).",
            ["endpoint", "code"],
            registry=None,
        )
        for collector in self.collectors:
            for result in REFRESH_RESULTS:
                self.refreshes.labels(collector=collector, result=result)
            for reason in ERROR_REASONS:
                self.refresh_errors.labels(collector=collector, reason=reason)
        for endpoint in dict.fromkeys(endpoints):
            for code in COMMON_CODES:
                self.api_requests.labels(endpoint=endpoint, code=code)
        self.last_reports: dict[str, RefreshReport] = {}
        self.last_success_at: dict[str, float] = {}

    def record(self, report: RefreshReport) -> None:
        """What the cache calls after each refresh of a collector."""
        self.last_reports[report.collector] = report
        self.refreshes.labels(collector=report.collector, result=report.result).inc()
        for failure in report.failures:
            self.refresh_errors.labels(collector=report.collector, reason=failure.reason).inc()
        if report.result == "success":
            self.last_success_at[report.collector] = report.ended_at

    def observe_request(self, endpoint: str, code: str) -> None:
        """What the client calls after each request it sent."""
        self.api_requests.labels(endpoint=endpoint, code=code).inc()

    def succeeded(self, collector: str) -> bool:
        report = self.last_reports.get(collector)
        return report is not None and report.result == "success"

    @property
    def up(self) -> bool:
        return all(self.succeeded(collector) for collector in self._up_collectors)

    def collect(self) -> Iterable[Metric]:
        yield GaugeMetricFamily(
            "openai_up",
            "1 if the last refresh of every enabled collector from the OpenAI Admin API "
            "completed without error (audit_logs aside: see openai_exporter_collector_success).",
            value=1 if self.up else 0,
        )
        success = GaugeMetricFamily(
            "openai_exporter_collector_success",
            "1 if the collector's last refresh completed without error, else 0.",
            labels=["collector"],
        )
        last_success = GaugeMetricFamily(
            "openai_exporter_collector_last_success_timestamp_seconds",
            "Unix time at which the collector's last fully successful refresh ended.",
            labels=["collector"],
        )
        duration = GaugeMetricFamily(
            "openai_exporter_collector_duration_seconds",
            "Duration of the collector's last refresh, successful or not.",
            labels=["collector"],
        )
        for collector in self.collectors:
            success.add_metric([collector], 1 if self.succeeded(collector) else 0)
            if collector in self.last_success_at:
                last_success.add_metric([collector], self.last_success_at[collector])
            if collector in self.last_reports:
                duration.add_metric([collector], self.last_reports[collector].duration)
        yield from (success, last_success, duration)
        for counter in (self.refreshes, self.refresh_errors, self.api_requests):
            yield from _without_created(counter.collect())
        yield build_info()


def build_info() -> Metric:
    build = GaugeMetricFamily(
        "openai_exporter_build_info",
        "Version of the exporter and of Python running it; always 1.",
        labels=["version", "python_version"],
    )
    build.add_metric([__version__, platform.python_version()], 1)
    return build


class OrganizationsHealth:
    """What ``/metrics`` serves with several organizations: the exporter's own metrics,
    one ``openai_exporter_organization_up`` per organization (its probe has the rest)."""

    def __init__(self, organizations: Mapping[str, ExporterHealth]) -> None:
        self._organizations = dict(organizations)

    def collect(self) -> Iterable[Metric]:
        up = GaugeMetricFamily(
            "openai_exporter_organization_up",
            "1 while the organization's openai_up is 1 (every enabled collector's last "
            "refresh completed without error); its metrics are at /probe?target=<organization>.",
            labels=["organization"],
        )
        for name, health in self._organizations.items():
            up.add_metric([name], 1 if health.up else 0)
        yield up
        yield build_info()
