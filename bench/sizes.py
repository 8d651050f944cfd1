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
        return OrganizationSpec(
            seed=seed,
            projects=self.projects,
            keys_per_project=self.keys_per_project,
            archived_fraction=0.0,
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
