"""One refresh: list projects and their keys, and build the next snapshot.

Key listings start as soon as each page of projects arrives and run concurrently,
bounded by a semaphore. A project whose listing fails keeps its last good keys;
if the project list itself fails, the whole last good snapshot stays.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from exporter.api_models import ApiProject, ApiProjectKey
from exporter.client import AdminApiClient
from exporter.errors import UpstreamError
from exporter.filters import ProjectFilter
from exporter.health import RefreshReport, RefreshResult
from exporter.snapshot import ApiKeyRecord, Inventory, ProjectRecord

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RefreshOutcome:
    inventory: Inventory | None  # None: nothing usable, neither new nor from before
    report: RefreshReport


def key_record(key: ApiProjectKey) -> ApiKeyRecord:
    owner = key.owner
    if owner.type == "user" and owner.user is not None:
        owner_id, owner_name, owner_email = owner.user.id, owner.user.name, owner.user.email or ""
    elif owner.type == "service_account" and owner.service_account is not None:
        owner_id, owner_name, owner_email = owner.service_account.id, owner.service_account.name, ""
    else:
        owner_id = owner_name = owner_email = ""
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


def _status(project: ApiProject) -> str:
    if project.status:
        return project.status
    return "archived" if project.archived_at is not None else "active"


class Refresher:
    def __init__(
        self,
        client_factory: Callable[[], AdminApiClient],
        *,
        include_archived: bool,
        project_filter: ProjectFilter,
        concurrency: int,
        deadline: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client_factory = client_factory
        self._include_archived = include_archived
        self._filter = project_filter
        self._concurrency = concurrency
        self._deadline = deadline
        self._clock = clock

    async def refresh(self, previous: Inventory | None) -> RefreshOutcome:
        started_at = self._clock()
        begun = time.monotonic()
        progress = _Progress()
        try:
            client = self._client_factory()
            async with asyncio.timeout(self._deadline):
                await self._list(client, progress)
        except UpstreamError as error:  # the key could not be read
            progress.errors.append(error)
        except TimeoutError:
            progress.errors.append(
                UpstreamError(
                    "timeout",
                    f"the refresh did not finish within its deadline of {self._deadline:g}s",
                    endpoint="api_keys" if progress.projects_complete else "projects",
                )
            )
        duration = time.monotonic() - begun
        errors = tuple(_detached(error) for error in progress.errors)
        for failure in errors:
            log.warning("%s", failure)
        if not progress.projects_complete:
            return RefreshOutcome(previous, RefreshReport("failure", started_at, duration, errors))
        result: RefreshResult = "partial" if errors else "success"
        inventory = _merge(progress, previous, taken_at=started_at + duration)
        return RefreshOutcome(inventory, RefreshReport(result, started_at, duration, errors))

    async def _list(self, client: AdminApiClient, progress: _Progress) -> None:
        semaphore = asyncio.Semaphore(self._concurrency)

        async def list_keys(project_id: str) -> None:
            async with semaphore:
                try:
                    listed = await client.project_keys(project_id)
                except UpstreamError as error:
                    progress.errors.append(error)
                    return
            progress.keys[project_id] = tuple(key_record(key) for key in listed)

        tasks: list[asyncio.Task[None]] = []
        try:
            async for page in client.project_pages(self._include_archived):
                for project in page:
                    if self._filter.keeps(project.id, project.name or ""):
                        progress.projects.append(project)
                        tasks.append(asyncio.create_task(list_keys(project.id)))
            progress.projects_complete = True
            await asyncio.gather(*tasks)
        except UpstreamError as error:  # the project list failed: the key listings are moot
            progress.errors.append(error)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


def _detached(error: UpstreamError) -> UpstreamError:
    """The error as the health report keeps it until the next refresh: without its
    traceback and chained exceptions, whose frames would hold this refresh's pages and
    response bodies (up to the client's body limit) alive until then."""
    error.__cause__ = error.__context__ = None
    return error.with_traceback(None)


@dataclass
class _Progress:
    """What a refresh has gathered so far; kept when its deadline cuts it short."""

    projects: list[ApiProject] = field(default_factory=list)
    keys: dict[str, tuple[ApiKeyRecord, ...]] = field(default_factory=dict)
    errors: list[UpstreamError] = field(default_factory=list)
    projects_complete: bool = False


def _merge(progress: _Progress, previous: Inventory | None, *, taken_at: float) -> Inventory:
    before = {project.id: project.keys for project in previous.projects} if previous else {}
    records = tuple(
        ProjectRecord(
            id=project.id,
            name=project.name or "",
            status=_status(project),
            keys=progress.keys.get(project.id, before.get(project.id)),
        )
        for project in progress.projects
    )
    return Inventory(projects=records, taken_at=taken_at)
