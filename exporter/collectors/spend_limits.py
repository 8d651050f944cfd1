"""The organization's and each project's hard spend limit and spend alerts.

``GET /organization/spend_limit`` and ``/organization/spend_alerts``, and for each
active project ``/organization/projects/{id}/spend_limit`` and ``.../spend_alerts``.
Amounts come in cents and are exported in US dollars. What the API answers when no
limit is set is not in the spec: a 404, or a body without a threshold, both mean "no
limit", and the limit's series are then absent. A project whose requests fail keeps
its last good limit and alerts; a failed organization request keeps the organization's.

Example exposition::

    openai_organization_spend_limit_usd 5000
    openai_organization_spend_limit_enforcing 0
    openai_project_spend_limit_usd{project_id="proj_a"} 250
    openai_project_spend_limit_enforcing{project_id="proj_a"} 1
    openai_organization_spend_alert_threshold_usd{spend_alert_id="alert_1"} 4000
    openai_project_spend_alert_threshold_usd{project_id="proj_a",spend_alert_id="alert_2"} 200
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from pydantic import Field

from exporter.collectors.base import Attempt, Collector, Family, Samples
from exporter.collectors.projects import PROJECTS, ApiProject, for_each_project
from exporter.snapshot import Snapshot
from exporter.upstream.client import AdminApiClient
from exporter.upstream.errors import UpstreamError
from exporter.upstream.lister import CursorEndpoint, list_all, path_of
from exporter.upstream.models import Wire

PERMISSION = "read access to the organization's spend limits (Organization Administration)"


class ApiEnforcement(Wire):
    status: str  # inactive or enforcing; an unknown status is not enforcing


class ApiSpendLimit(Wire):
    threshold_amount: int | None = Field(default=None, ge=0)  # cents
    enforcement: ApiEnforcement | None = None


class ApiSpendAlert(Wire):
    id: str = Field(min_length=1)
    threshold_amount: int = Field(ge=0)  # cents


@dataclass(frozen=True)
class SingleEndpoint:
    """An endpoint that answers one object (no paging)."""

    name: str
    path: str


ORGANIZATION_LIMIT = SingleEndpoint("spend_limit", "/organization/spend_limit")
PROJECT_LIMIT = SingleEndpoint(
    "project_spend_limit", "/organization/projects/{project_id}/spend_limit"
)
ORGANIZATION_ALERTS = CursorEndpoint(
    "spend_alerts", "/organization/spend_alerts", ApiSpendAlert, permission=PERMISSION
)
PROJECT_ALERTS = CursorEndpoint(
    "project_spend_alerts",
    "/organization/projects/{project_id}/spend_alerts",
    ApiSpendAlert,
    permission=PERMISSION,
)


@dataclass(frozen=True, slots=True)
class Limit:
    usd: Decimal
    enforcing: bool


@dataclass(frozen=True, slots=True)
class Spend:
    """A limit (None: none set) and the spend alerts (id, threshold in dollars)."""

    limit: Limit | None
    alerts: tuple[tuple[str, Decimal], ...]


@dataclass(frozen=True, slots=True)
class SpendLimits:
    organization: Spend | None  # None: never read successfully
    projects: Mapping[str, Spend] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.projects)


LIMIT_HELP = "Hard spend limit per calendar month, in US dollars (the API gives cents); "
ORGANIZATION_LIMIT_USD = Family(
    "openai_organization_spend_limit_usd", LIMIT_HELP + "absent when none is set."
)
ORGANIZATION_ENFORCING = Family(
    "openai_organization_spend_limit_enforcing",
    "1 while the organization's hard spend limit is enforcing (requests refused), else 0.",
)
ORGANIZATION_ALERT = Family(
    "openai_organization_spend_alert_threshold_usd",
    "Threshold of each spend alert of the organization, in US dollars per month.",
    ("spend_alert_id",),
)
PROJECT_LIMIT_USD = Family(
    "openai_project_spend_limit_usd", LIMIT_HELP + "absent when none is set.", ("project_id",)
)
PROJECT_ENFORCING = Family(
    "openai_project_spend_limit_enforcing",
    "1 while the project's hard spend limit is enforcing (requests refused), else 0.",
    ("project_id",),
)
PROJECT_ALERT = Family(
    "openai_project_spend_alert_threshold_usd",
    "Threshold of each spend alert of the project, in US dollars per month.",
    ("project_id", "spend_alert_id"),
)


def _dollars(cents: int) -> Decimal:
    return Decimal(cents) / 100


async def _limit(client: AdminApiClient, endpoint: SingleEndpoint, path: str) -> Limit | None:
    try:
        body = await client.get(
            path, (), ApiSpendLimit, endpoint=endpoint.name, permission=PERMISSION
        )
    except UpstreamError as error:
        if error.status == 404:  # no limit set (the spec leaves this answer open)
            return None
        raise
    if body.threshold_amount is None:
        return None
    enforcing = body.enforcement is not None and body.enforcement.status == "enforcing"
    return Limit(_dollars(body.threshold_amount), enforcing)


async def _spend(
    client: AdminApiClient,
    limit: SingleEndpoint,
    alerts: CursorEndpoint[ApiSpendAlert],
    path_args: Mapping[str, str],
) -> Spend:
    path = path_of(limit.path, path_args, limit.name)
    found, listed = await asyncio.gather(
        _limit(client, limit, path), list_all(client, alerts, path_args=path_args)
    )
    return Spend(found, tuple((alert.id, _dollars(alert.threshold_amount)) for alert in listed))


class SpendLimitsCollector(Collector[SpendLimits]):
    name = "spend_limits"
    endpoints = (
        ORGANIZATION_LIMIT.name,
        ORGANIZATION_ALERTS.name,
        PROJECTS.name,
        PROJECT_LIMIT.name,
        PROJECT_ALERTS.name,
    )
    families = (
        ORGANIZATION_LIMIT_USD,
        ORGANIZATION_ENFORCING,
        ORGANIZATION_ALERT,
        PROJECT_LIMIT_USD,
        PROJECT_ENFORCING,
        PROJECT_ALERT,
    )

    async def fetch(self, client: AdminApiClient, attempt: Attempt[SpendLimits]) -> None:
        previous = attempt.previous
        organization = previous.organization if previous else None
        try:
            organization = await _spend(client, ORGANIZATION_LIMIT, ORGANIZATION_ALERTS, {})
        except UpstreamError as error:
            attempt.errors.append(error)
        before = previous.projects if previous else {}
        projects: list[ApiProject] = []
        read: dict[str, Spend] = {}

        async def read_project(project_id: str) -> None:
            read[project_id] = await _spend(
                client, PROJECT_LIMIT, PROJECT_ALERTS, {"project_id": project_id}
            )

        def build() -> SpendLimits:
            merged = {}
            for project in projects:
                spend = read.get(project.id, before.get(project.id))
                if spend is not None:
                    merged[project.id] = spend
            return SpendLimits(organization, merged)

        def buildable() -> None:
            attempt.build = build

        await for_each_project(
            client,
            read_project,
            self.options,
            projects,
            attempt.errors,
            lists=lambda project: project.effective_status != "archived",
            on_projects_listed=buildable,
        )

    def samples(self, rows: SpendLimits, snapshot: Snapshot) -> Iterable[tuple[Family, Samples]]:
        org = rows.organization
        limit = org.limit if org else None
        yield ORGANIZATION_LIMIT_USD, [((), float(limit.usd))] if limit else []
        yield ORGANIZATION_ENFORCING, [((), int(limit.enforcing))] if limit else []
        yield ORGANIZATION_ALERT, (((aid,), float(usd)) for aid, usd in (org.alerts if org else ()))
        projects = rows.projects.items()
        limits = [(pid, spend.limit) for pid, spend in projects if spend.limit is not None]
        yield PROJECT_LIMIT_USD, (((pid,), float(lim.usd)) for pid, lim in limits)
        yield PROJECT_ENFORCING, (((pid,), int(lim.enforcing)) for pid, lim in limits)
        yield (
            PROJECT_ALERT,
            (((pid, aid), float(usd)) for pid, spend in projects for aid, usd in spend.alerts),
        )

    def max_in_flight(self) -> int:
        # The organization's two requests, the project pages, two per project in flight.
        return 3 + 2 * self.options.concurrency

    def summary(self, rows: SpendLimits) -> str:
        with_limit = sum(1 for spend in rows.projects.values() if spend.limit is not None)
        return f"{with_limit} of {len(rows.projects)} projects with a hard limit"
