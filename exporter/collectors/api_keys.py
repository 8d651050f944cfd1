"""Projects and their API keys: ``GET /organization/projects`` and, per project,
``GET /organization/projects/{id}/api_keys?owner_project_access=any``.

Key listings start as soon as each page of projects arrives and run concurrently,
bounded by a semaphore (``collectors.projects``). A project whose key listing fails
keeps its last good keys; if the project list itself fails, the whole last good state
stays.

Example exposition for one key::

    openai_project_info{project_id="proj_a",project_name="Web",status="active"} 1
    openai_project_api_keys{project_id="proj_a"} 1
    openai_api_key_info{project_id="proj_a",api_key_id="key_a",api_key_name="ci",...} 1
    openai_api_key_created_timestamp_seconds{project_id="proj_a",api_key_id="key_a"} 1.7e9
    openai_api_key_last_used_timestamp_seconds{project_id="proj_a",api_key_id="key_a"} 1.7e9
    openai_api_key_never_used{project_id="proj_a",api_key_id="key_a"} 0
    openai_api_key_age_seconds{project_id="proj_a",api_key_id="key_a"} 8.6e6
    openai_api_key_idle_seconds{project_id="proj_a",api_key_id="key_a"} 86400
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial
from typing import Literal

from pydantic import Field

from exporter.collectors.base import Attempt, Collector, Family, Samples
from exporter.collectors.projects import PROJECTS, PerProject, list_per_project
from exporter.snapshot import Snapshot
from exporter.upstream.client import AdminApiClient
from exporter.upstream.lister import CursorEndpoint
from exporter.upstream.models import Timestamp, Wire

# -- the upstream resource ----------------------------------------------------


class ApiKeyOwnerUser(Wire):
    id: str
    name: str
    email: str | None = None
    role: str | None = None


class ApiKeyOwnerServiceAccount(Wire):
    id: str
    name: str
    role: str | None = None


class ApiKeyOwner(Wire):
    type: Literal["user", "service_account"]
    user: ApiKeyOwnerUser | None = None
    service_account: ApiKeyOwnerServiceAccount | None = None


class ApiProjectKey(Wire):
    id: str = Field(min_length=1)
    object: Literal["organization.project.api_key"]
    name: str
    created_at: Timestamp
    last_used_at: Timestamp | None
    owner_project_access: Literal["active", "inactive"]
    owner: ApiKeyOwner


# Without owner_project_access=any the API applies membership-based visibility and may
# leave enabled keys out.
API_KEYS = CursorEndpoint(
    "api_keys",
    "/organization/projects/{project_id}/api_keys",
    ApiProjectKey,
    query=(("owner_project_access", "any"),),
)

# -- the rows -----------------------------------------------------------------

OwnerType = Literal["user", "service_account"]
OwnerAccess = Literal["active", "inactive"]


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    """One project API key, reduced to what the metrics need (never its value)."""

    id: str
    name: str
    created_at: int
    last_used_at: int | None
    owner_type: OwnerType
    owner_id: str
    owner_name: str
    owner_email: str
    owner_project_access: OwnerAccess


@dataclass(frozen=True, slots=True)
class ProjectRecord:
    """One project and its keys.

    ``keys`` is ``None`` when this project's keys have never been listed
    successfully: the exporter then publishes the project but no key count,
    rather than a wrong count of zero.
    """

    id: str
    name: str
    status: str
    keys: tuple[ApiKeyRecord, ...] | None


@dataclass(frozen=True, slots=True)
class ProjectKeys:
    """The rows of this collector: every project kept by the filters, with its keys."""

    projects: tuple[ProjectRecord, ...]

    @property
    def key_count(self) -> int:
        return sum(len(project.keys) for project in self.projects if project.keys is not None)


def key_record(key: ApiProjectKey, *, email: bool = True) -> ApiKeyRecord:
    """The key as the snapshot keeps it; without ``email`` the owner's address is not
    kept at all (it is exported only with --metrics.owner-email)."""
    owner = key.owner
    if owner.type == "user" and owner.user is not None:
        owner_id, owner_name, owner_email = owner.user.id, owner.user.name, owner.user.email or ""
    elif owner.type == "service_account" and owner.service_account is not None:
        owner_id, owner_name, owner_email = owner.service_account.id, owner.service_account.name, ""
    else:
        owner_id = owner_name = owner_email = ""
    if not email:
        owner_email = ""
    return ApiKeyRecord(
        id=key.id,
        name=key.name,
        created_at=key.created_at,
        last_used_at=key.last_used_at,
        owner_type=owner.type,
        owner_id=owner_id,
        owner_name=owner_name,
        owner_email=owner_email,
        owner_project_access=key.owner_project_access,
    )


# -- the families -------------------------------------------------------------

KEY_LABELS = ("project_id", "api_key_id")
INFO_LABELS = (
    "project_id",
    "api_key_id",
    "api_key_name",
    "owner_type",
    "owner_id",
    "owner_name",
    "owner_project_access",
)
PROJECT_INFO = Family(
    "openai_project_info",
    "One series per project, carrying its name and status.",
    ("project_id", "project_name", "status"),
)
PROJECT_KEYS = Family(
    "openai_project_api_keys", "Number of API keys in the project.", ("project_id",)
)
KEY_INFO = Family(
    "openai_api_key_info",
    "One series per project API key, carrying its name and owner.",
    INFO_LABELS,
)
KEY_INFO_WITH_EMAIL = Family(KEY_INFO.name, KEY_INFO.help, (*INFO_LABELS, "owner_email"))
KEY_CREATED = Family(
    "openai_api_key_created_timestamp_seconds",
    "Unix time at which the API key was created.",
    KEY_LABELS,
)
KEY_LAST_USED = Family(
    "openai_api_key_last_used_timestamp_seconds",
    "Unix time at which the API key was last used; absent for keys never used.",
    KEY_LABELS,
)
KEY_NEVER_USED = Family(
    "openai_api_key_never_used", "1 if the API key has never been used, else 0.", KEY_LABELS
)
KEY_AGE = Family(
    "openai_api_key_age_seconds", "Seconds since the API key was created.", KEY_LABELS, since=True
)
KEY_IDLE = Family(
    "openai_api_key_idle_seconds",
    "Seconds since the API key was last used, or since it was created if never used.",
    KEY_LABELS,
    since=True,
)


class ApiKeysCollector(Collector[ProjectKeys]):
    name = "api_keys"
    endpoints = (PROJECTS.name, API_KEYS.name)
    families = (
        PROJECT_INFO,
        PROJECT_KEYS,
        KEY_INFO,
        KEY_CREATED,
        KEY_LAST_USED,
        KEY_NEVER_USED,
        KEY_AGE,
        KEY_IDLE,
    )

    def info_family(self) -> Family:
        return KEY_INFO_WITH_EMAIL if self.options.emails else KEY_INFO

    async def fetch(self, client: AdminApiClient, attempt: Attempt[ProjectKeys]) -> None:
        progress: PerProject[ApiKeyRecord] = PerProject()

        previous = attempt.previous  # not the attempt itself: no reference cycle

        def buildable() -> None:  # from here on, with whatever keys are listed by then
            attempt.build = lambda: _merge(progress, previous)

        await list_per_project(
            client,
            API_KEYS,
            partial(key_record, email=self.options.emails),
            self.options,
            progress,
            attempt.errors,
            on_projects_listed=buildable,
        )

    def samples(self, rows: ProjectKeys, snapshot: Snapshot) -> Iterable[tuple[Family, Samples]]:
        projects = rows.projects
        keys = [(project.id, key) for project in projects for key in project.keys or ()]
        ids = [(pid, key.id) for pid, key in keys]
        yield PROJECT_INFO, (((p.id, p.name, p.status), 1) for p in projects)
        yield PROJECT_KEYS, (((p.id,), len(p.keys)) for p in projects if p.keys is not None)
        email = self.options.emails
        yield (
            self.info_family(),
            (
                (
                    (
                        pid,
                        key.id,
                        key.name,
                        key.owner_type,
                        key.owner_id,
                        key.owner_name,
                        key.owner_project_access,
                        *((key.owner_email,) if email else ()),
                    ),
                    1,
                )
                for pid, key in keys
            ),
        )
        yield KEY_CREATED, zip(ids, [key.created_at for _, key in keys], strict=True)
        yield (
            KEY_LAST_USED,
            (
                (label, key.last_used_at)
                for label, (_, key) in zip(ids, keys, strict=True)
                if key.last_used_at is not None
            ),
        )
        yield (
            KEY_NEVER_USED,
            zip(ids, [1 if key.last_used_at is None else 0 for _, key in keys], strict=True),
        )
        yield KEY_AGE, zip(ids, [key.created_at for _, key in keys], strict=True)
        yield (
            KEY_IDLE,
            zip(
                ids,
                [
                    key.created_at if key.last_used_at is None else key.last_used_at
                    for _, key in keys
                ],
                strict=True,
            ),
        )

    def max_in_flight(self) -> int:
        return 1 + self.options.concurrency  # the project pages and the listings per project

    def summary(self, rows: ProjectKeys) -> str:
        return f"{len(rows.projects)} projects, {rows.key_count} keys"


def _merge(progress: PerProject[ApiKeyRecord], previous: ProjectKeys | None) -> ProjectKeys:
    before = {project.id: project.keys for project in previous.projects} if previous else {}
    return ProjectKeys(
        tuple(
            ProjectRecord(
                id=project.id,
                name=project.name or "",
                status=project.effective_status,
                keys=progress.listed.get(project.id, before.get(project.id)),
            )
            for project in progress.projects
        )
    )
