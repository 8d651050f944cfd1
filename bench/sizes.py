"""The organizations the benchmark measures, and the exact request counts they imply."""

from __future__ import annotations

import math
from dataclasses import dataclass

from exporter.simulator.organization import OrganizationSpec

API_PAGE_LIMIT = 100  # what the exporter asks for: the API's maximum
SDK_DEFAULT_LIMIT = 20  # the API's default page size, what a script with the SDK gets


@dataclass(frozen=True)
class Size:
    name: str
    projects: int
    keys_per_project: int

    @property
    def keys(self) -> int:
        return self.projects * self.keys_per_project

    def spec(self, seed: int = 5) -> OrganizationSpec:
        # No archived projects: every project and key of the spec is listed, so the
        # counts below are exact. Awkward names stay on: escaping costs are real costs.
        # Usage off (no active keys): these sizes measure the key inventory, as in
        # issues 5 and 9; the usage size below measures usage on its own. The keys are
        # the same either way (usage draws from its own generator).
        return OrganizationSpec(
            seed=seed,
            projects=self.projects,
            keys_per_project=self.keys_per_project,
            archived_fraction=0.0,
            active_keys=0,
        )

    def requests(self, limit: int) -> int:
        """Pages of the project list plus, per project, its pages of keys."""
        return _pages(self.projects, limit) + self.projects * _pages(self.keys_per_project, limit)

    @property
    def minimum_requests(self) -> int:
        return self.requests(API_PAGE_LIMIT)

    @property
    def project_pages(self) -> int:
        return _pages(self.projects, API_PAGE_LIMIT)

    def refresh_lower_bound(self, concurrency: int, latency: float) -> float:
        """No refresh can be faster: the project pages are sequential, and at most
        ``concurrency`` requests are in flight at once."""
        rounds = max(self.project_pages, math.ceil(self.minimum_requests / concurrency))
        return rounds * latency


def _pages(items: int, limit: int) -> int:
    return max(1, math.ceil(items / limit))  # an empty listing still costs one request


SIZES = {
    size.name: size
    for size in (Size("small", 10, 5), Size("large", 1_000, 20), Size("huge", 5_000, 20))
}


USAGE_SOURCES = 6  # completions, embeddings, moderations, images, audio speeches, transcriptions
HOUR = 3600
# The instant the usage size is measured at, fixed so that every run (on any day) sees the
# same buckets: Tuesday 2026-12-01 10:05 UTC, five minutes into an hour of a working day.
# The lookback of 3h then spans 07:00 to now: four hourly buckets, the open one included,
# and the one before it still growing (its late half arrives within 15 minutes).
USAGE_AT = 1_796_119_500
POLL_INTERVAL = 300  # --usage.interval's default: a steady poll re-reads the window 5 min on


@dataclass(frozen=True)
class UsageSize:
    """An organization whose ``active_keys`` each use ``models`` models of every source:
    ``active_keys * models * 6`` usage series (plus the keyless playground usage of every
    third project with usage), polled in hourly buckets."""

    name: str
    projects: int
    keys_per_project: int
    active_keys: int
    models: int
    lookback_buckets: int = 4  # --usage.lookback=3h at five past the hour

    @property
    def keys(self) -> int:
        return self.projects * self.keys_per_project

    @property
    def nominal_series(self) -> int:
        return self.active_keys * self.models * USAGE_SOURCES

    @property
    def minimum_requests(self) -> int:
        """One page per source: the window's buckets fit ``limit`` (at most 168)."""
        return USAGE_SOURCES

    def spec(self, seed: int = 5) -> OrganizationSpec:
        return OrganizationSpec(
            seed=seed,
            projects=self.projects,
            keys_per_project=self.keys_per_project,
            archived_fraction=0.0,
            active_keys=self.active_keys,
            models_per_source=self.models,
            now=USAGE_AT,
        )


AUDIT_AT = USAGE_AT  # the audit size starts at the same fixed instant
AUDIT_POLL_INTERVAL = 60  # --audit.interval's default


@dataclass(frozen=True)
class AuditSize:
    """An audit log that grows by ``events_per_minute``, a fifth of them listed late
    (up to 5 minutes back), over ``history_minutes`` of the same rate before the start
    (more than the backfill's page bound reads)."""

    name: str
    events_per_minute: int
    history_minutes: int = 120


AUDIT_SIZES = {size.name: size for size in (AuditSize("audit", events_per_minute=1_000),)}


USAGE_SIZES = {
    size.name: size
    # The large organization's 20,000 keys, half of them in use.
    for size in (
        UsageSize("usage", projects=1_000, keys_per_project=20, active_keys=10_000, models=3),
    )
}
