"""The exporter's own health: direct instrumentation, one instance per app.

Counters are created unregistered and exposed through ``collect``, so each app
(and each test) has its own and nothing global needs resetting.
"""

from __future__ import annotations

import platform
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, get_args

from prometheus_client import Counter
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from exporter import __version__
from exporter.errors import ENDPOINTS, ERROR_REASONS, UpstreamError

RefreshResult = Literal["success", "partial", "failure"]
REFRESH_RESULTS: tuple[RefreshResult, ...] = get_args(RefreshResult)
# Present from the start at 0, so increase() sees the first 429 too.
COMMON_CODES = ("200", "429", "error")


@dataclass(frozen=True)
class RefreshReport:
    """What the last refresh did, as the health metrics and landing page show it."""

    result: RefreshResult
    started_at: float
    duration: float
    errors: tuple[UpstreamError, ...]


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
    def __init__(self) -> None:
        self.refreshes = Counter(
            "openai_exporter_refreshes",
            "Refreshes of the inventory from the Admin API, by result.",
            ["result"],
            registry=None,
        )
        self.refresh_errors = Counter(
            "openai_exporter_refresh_errors",
            "Upstream listings that failed after their retries, by reason.",
            ["reason"],
            registry=None,
        )
        self.api_requests = Counter(
            "openai_exporter_api_requests",
            "Requests sent to the Admin API, by endpoint and HTTP status (error: no response).",
            ["endpoint", "code"],
            registry=None,
        )
        for result in REFRESH_RESULTS:
            self.refreshes.labels(result=result)
        for reason in ERROR_REASONS:
            self.refresh_errors.labels(reason=reason)
        for endpoint in ENDPOINTS:
            for code in COMMON_CODES:
                self.api_requests.labels(endpoint=endpoint, code=code)
        self.last_report: RefreshReport | None = None
        self.last_success_at: float | None = None

    def record(self, report: RefreshReport) -> None:
        self.last_report = report
        self.refreshes.labels(result=report.result).inc()
        for error in report.errors:
            self.refresh_errors.labels(reason=error.reason).inc()
        if report.result == "success":
            self.last_success_at = report.started_at + report.duration

    @property
    def up(self) -> bool:
        return self.last_report is not None and self.last_report.result == "success"

    def collect(self) -> Iterable[Metric]:
        yield GaugeMetricFamily(
            "openai_up",
            "1 if the most recent refresh from the OpenAI Admin API completed without error.",
            value=1 if self.up else 0,
        )
        if self.last_success_at is not None:
            yield GaugeMetricFamily(
                "openai_exporter_last_success_timestamp_seconds",
                "Unix time at which the last fully successful refresh ended.",
                value=self.last_success_at,
            )
        if self.last_report is not None:
            yield GaugeMetricFamily(
                "openai_exporter_refresh_duration_seconds",
                "Duration of the last refresh, successful or not.",
                value=self.last_report.duration,
            )
        for counter in (self.refreshes, self.refresh_errors, self.api_requests):
            yield from _without_created(counter.collect())
        build = GaugeMetricFamily(
            "openai_exporter_build_info",
            "Version of the exporter and of Python running it; always 1.",
            labels=["version", "python_version"],
        )
        build.add_metric([__version__, platform.python_version()], 1)
        yield build
