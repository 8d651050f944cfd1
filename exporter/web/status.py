"""What the landing page says of an organization: read from its unit, never refreshing."""

from __future__ import annotations

from urllib.parse import quote

from exporter.web.landing import CollectorStatus, OrganizationStatus
from exporter.web.units import OrganizationUnit


def collector_statuses(unit: OrganizationUnit, now: float) -> tuple[CollectorStatus, ...]:
    """One row per collector: what its state holds, how old, its last refresh."""
    snapshot = unit.cache.current()
    health = unit.health
    refreshing = {cache.name for cache in unit.cache.caches if cache.refreshing}
    rows = []
    for collector in unit.collectors:
        state = snapshot.get(collector.name)
        report = health.last_reports.get(collector.name)
        summary = None if state is None else collector.summary(state.rows)
        if state is not None and not state.complete:
            summary = f"{summary} (part from an earlier refresh)"
        result: str | None = None if report is None else report.result
        if collector.name in refreshing:
            result = f"{result or 'first one'}, refreshing now"
        rows.append(
            CollectorStatus(
                name=collector.name,
                age=None if state is None else now - state.taken_at,
                summary=summary,
                last_result=result,
                last_error=report.failures[0].text if report and report.failures else None,
            )
        )
    return tuple(rows)


def organization_status(unit: OrganizationUnit, now: float, probe_path: str) -> OrganizationStatus:
    """One row per organization: the age of its oldest state (how old its data may be),
    its last refresh over every collector, and the link to its probe."""
    assert unit.name is not None  # only organizations of --config.file have a row
    states = unit.cache.current().values()
    reports = [unit.health.last_reports.get(collector.name) for collector in unit.collectors]
    done = [report for report in reports if report is not None]
    results = {report.result for report in done}
    if not done:
        result = None
    elif len(results) == 1 and len(done) == len(reports):
        (result,) = results
    else:
        result = "partial"  # some collectors failed, or have not tried yet
    errors = [failure.text for report in done for failure in report.failures]
    return OrganizationStatus(
        name=unit.name,
        probe=f"{probe_path}?target={quote(unit.name)}",
        age=max((now - state.taken_at for state in states), default=None),
        last_result=result,
        last_error=errors[0] if errors else None,
        up=unit.health.up,
    )
