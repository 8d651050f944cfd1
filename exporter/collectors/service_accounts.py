"""Service accounts of every project: ``GET /organization/projects/{id}/service_accounts``.

Off by default: one more request per project. Archived projects are not asked (the API
answers 400 for them). A project whose listing fails keeps its last good accounts; if
the project list fails, the whole last good state stays.

Example exposition::

    openai_service_account_info{project_id="proj_a",service_account_id="svc_1",...} 1
    openai_service_account_created_timestamp_seconds{project_id="proj_a",...} 1.7e9
    openai_project_service_accounts{project_id="proj_a"} 1
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
from exporter.upstream.models import Timestamp, Wire


class ApiServiceAccount(Wire):
    id: str = Field(min_length=1)
    name: str
    role: str  # owner, member or none in the spec; an unknown role is kept as it comes
    created_at: Timestamp


SERVICE_ACCOUNTS = CursorEndpoint(
    "service_accounts",
    "/organization/projects/{project_id}/service_accounts",
    ApiServiceAccount,
    permission="read access to the projects' service accounts "
    "(Organization Administration, api.management.read)",
)


@dataclass(frozen=True, slots=True)
class ServiceAccountRecord:
    id: str
    name: str
    role: str
    created_at: int


@dataclass(frozen=True, slots=True)
class ProjectAccounts:
    """Each listed project's service accounts; a project never listed is left out."""

    projects: tuple[tuple[str, tuple[ServiceAccountRecord, ...]], ...]

    def __len__(self) -> int:
        return sum(len(accounts) for _, accounts in self.projects)


def account_record(account: ApiServiceAccount) -> ServiceAccountRecord:
    return ServiceAccountRecord(account.id, account.name, account.role, account.created_at)


IDS = ("project_id", "service_account_id")
INFO = Family(
    "openai_service_account_info",
    "One series per service account of a project, carrying its name and role.",
    ("project_id", "service_account_id", "service_account_name", "role"),
)
CREATED = Family(
    "openai_service_account_created_timestamp_seconds",
    "Unix time at which the service account was created.",
    IDS,
)
COUNT = Family(
    "openai_project_service_accounts", "Number of service accounts in the project.", ("project_id",)
)


class ServiceAccountsCollector(Collector[ProjectAccounts]):
    name = "service_accounts"
    endpoints = (PROJECTS.name, SERVICE_ACCOUNTS.name)
    families = (INFO, CREATED, COUNT)

    async def fetch(self, client: AdminApiClient, attempt: Attempt[ProjectAccounts]) -> None:
        progress: PerProject[ServiceAccountRecord] = PerProject()

        previous = attempt.previous  # not the attempt itself: no reference cycle

        def buildable() -> None:
            attempt.build = lambda: _merge(progress, previous)

        await list_per_project(
            client,
            SERVICE_ACCOUNTS,
            account_record,
            self.options,
            progress,
            attempt.errors,
            lists=lambda project: project.effective_status != "archived",
            on_projects_listed=buildable,
        )

    def samples(
        self, rows: ProjectAccounts, snapshot: Snapshot
    ) -> Iterable[tuple[Family, Samples]]:
        accounts = [(pid, account) for pid, listed in rows.projects for account in listed]
        yield INFO, (((pid, a.id, a.name, a.role), 1) for pid, a in accounts)
        yield CREATED, (((pid, a.id), a.created_at) for pid, a in accounts)
        yield COUNT, (((pid,), len(listed)) for pid, listed in rows.projects)

    def max_in_flight(self) -> int:
        return 1 + self.options.concurrency  # the project pages and the listings per project

    def summary(self, rows: ProjectAccounts) -> str:
        return f"{len(rows)} service accounts in {len(rows.projects)} projects"


def _merge(
    progress: PerProject[ServiceAccountRecord], previous: ProjectAccounts | None
) -> ProjectAccounts:
    return ProjectAccounts(merge_per_project(progress, dict(previous.projects) if previous else {}))
