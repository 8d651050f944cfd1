"""Each project's rate limits per model: ``GET /organization/projects/{id}/rate_limits``.

Off by default: one more request per project, and one series pair per project and model
(a few dozen models each). Archived projects are not asked. A project whose listing
fails keeps its last good limits.

Example exposition::

    openai_project_rate_limit_requests_per_minute{project_id="proj_a",model="gpt-4o"} 10000
    openai_project_rate_limit_tokens_per_minute{project_id="proj_a",model="gpt-4o"} 3e7
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pydantic import Field

from exporter.collectors.base import Attempt, Collector, Family, Samples
from exporter.collectors.projects import (
    PROJECTS,
    PerProject,
    list_per_project,
    merge_per_project,
)
from exporter.snapshot import Snapshot
from exporter.upstream.client import AdminApiClient
from exporter.upstream.lister import CursorEndpoint
from exporter.upstream.models import Wire


class ApiRateLimit(Wire):
    id: str = Field(min_length=1)
    model: str
    max_requests_per_1_minute: int = Field(ge=0)
    max_tokens_per_1_minute: int = Field(ge=0)


RATE_LIMITS = CursorEndpoint(
    "rate_limits",
    "/organization/projects/{project_id}/rate_limits",
    ApiRateLimit,
    permission="read access to the projects' rate limits "
    "(Organization Administration, api.management.read)",
)


@dataclass(frozen=True, slots=True)
class RateLimit:
    model: str
    requests_per_minute: int
    tokens_per_minute: int


@dataclass(frozen=True, slots=True)
class ProjectRateLimits:
    projects: tuple[tuple[str, tuple[RateLimit, ...]], ...]

    def __len__(self) -> int:
        return sum(len(limits) for _, limits in self.projects)


def _record(item: ApiRateLimit) -> RateLimit:
    return RateLimit(item.model, item.max_requests_per_1_minute, item.max_tokens_per_1_minute)


LABELS = ("project_id", "model")
REQUESTS = Family(
    "openai_project_rate_limit_requests_per_minute",
    "The project's limit of requests per minute to the model.",
    LABELS,
)
TOKENS = Family(
    "openai_project_rate_limit_tokens_per_minute",
    "The project's limit of tokens per minute to the model.",
    LABELS,
)


class RateLimitsCollector(Collector[ProjectRateLimits]):
    name = "rate_limits"
    endpoints = (PROJECTS.name, RATE_LIMITS.name)
    families = (REQUESTS, TOKENS)

    async def fetch(self, client: AdminApiClient, attempt: Attempt[ProjectRateLimits]) -> None:
        progress: PerProject[RateLimit] = PerProject()
        before = dict(attempt.previous.projects) if attempt.previous else {}

        def build() -> ProjectRateLimits:
            merged = merge_per_project(progress, before)
            # One entry per model, should the API list a model twice.
            return ProjectRateLimits(
                tuple(
                    (pid, tuple({lim.model: lim for lim in limits}.values()))
                    for pid, limits in merged
                )
            )

        def buildable() -> None:
            attempt.build = build

        await list_per_project(
            client,
            RATE_LIMITS,
            _record,
            self.options,
            progress,
            attempt.errors,
            lists=lambda project: project.effective_status != "archived",
            on_projects_listed=buildable,
        )

    def samples(
        self, rows: ProjectRateLimits, snapshot: Snapshot
    ) -> Iterable[tuple[Family, Samples]]:
        limits = [(pid, limit) for pid, listed in rows.projects for limit in listed]
        yield REQUESTS, (((pid, lim.model), lim.requests_per_minute) for pid, lim in limits)
        yield TOKENS, (((pid, lim.model), lim.tokens_per_minute) for pid, lim in limits)

    def max_in_flight(self) -> int:
        return 1 + self.options.concurrency

    def summary(self, rows: ProjectRateLimits) -> str:
        return f"{len(rows)} model limits in {len(rows.projects)} projects"
