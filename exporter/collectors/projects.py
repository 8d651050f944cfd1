"""Listings per project: the project list, and one listing per project streamed from it.

Project pages are listed one at a time and each project's listing starts as soon as its
page arrives, concurrently, bounded by a semaphore. Shared by the collectors whose
resource lives under ``/organization/projects/{id}/...`` (api keys, service accounts).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Generic, Literal, TypeVar

from pydantic import Field

from exporter.collectors.base import Options
from exporter.upstream.client import AdminApiClient
from exporter.upstream.errors import UpstreamError
from exporter.upstream.lister import CursorEndpoint, list_all, list_cursor
from exporter.upstream.models import Identified, Timestamp, Wire

ItemT = TypeVar("ItemT", bound=Identified)
RecordT = TypeVar("RecordT")


class ApiProject(Wire):
    id: str = Field(min_length=1)
    object: Literal["organization.project"]
    created_at: Timestamp
    name: str | None = None
    status: str | None = None
    archived_at: Timestamp | None = None

    @property
    def effective_status(self) -> str:
        if self.status:
            return self.status
        return "archived" if self.archived_at is not None else "active"


PROJECTS = CursorEndpoint("projects", "/organization/projects", ApiProject)


@dataclass
class PerProject(Generic[RecordT]):
    """What a per-project listing has gathered so far (kept when a deadline cuts it)."""

    projects: list[ApiProject] = field(default_factory=list)
    listed: dict[str, tuple[RecordT, ...]] = field(default_factory=dict)


def merge_per_project(
    progress: PerProject[RecordT], previous: Mapping[str, tuple[RecordT, ...]]
) -> tuple[tuple[str, tuple[RecordT, ...]], ...]:
    """Each listed project with what this refresh listed for it, or else its last good
    records; a project never listed successfully is left out."""
    merged = []
    for project in progress.projects:
        listed = progress.listed.get(project.id, previous.get(project.id))
        if listed is not None:
            merged.append((project.id, listed))
    return tuple(merged)


async def list_per_project(
    client: AdminApiClient,
    endpoint: CursorEndpoint[ItemT],
    record: Callable[[ItemT], RecordT],
    options: Options,
    progress: PerProject[RecordT],
    errors: list[UpstreamError],
    *,
    lists: Callable[[ApiProject], bool] = lambda _project: True,
    on_projects_listed: Callable[[], None] = lambda: None,
) -> None:
    """Every project the filters keep, and ``endpoint`` for each of them that ``lists``.

    A project listing that fails is appended to ``errors`` (its project keeps whatever
    the caller merges in for it); a failed project list raises.
    """

    async def list_one(project_id: str) -> None:
        items = await list_all(client, endpoint, path_args={"project_id": project_id})
        progress.listed[project_id] = tuple(record(item) for item in items)

    await for_each_project(
        client,
        list_one,
        options,
        progress.projects,
        errors,
        lists=lists,
        on_projects_listed=on_projects_listed,
    )


async def for_each_project(
    client: AdminApiClient,
    read: Callable[[str], Awaitable[None]],
    options: Options,
    projects: list[ApiProject],
    errors: list[UpstreamError],
    *,
    lists: Callable[[ApiProject], bool] = lambda _project: True,
    on_projects_listed: Callable[[], None] = lambda: None,
) -> None:
    """Every project the filters keep (appended to ``projects``), and ``read(project_id)``
    for each of them that ``lists``, at most ``options.concurrency`` at once, each
    starting as soon as its page of projects arrives. A ``read`` that fails is appended
    to ``errors``; a failed project list raises."""
    semaphore = asyncio.Semaphore(options.concurrency)

    async def read_one(project_id: str) -> None:
        async with semaphore:
            try:
                await read(project_id)
            except UpstreamError as error:
                errors.append(error)

    query = [("include_archived", "true")] if options.include_archived else []
    tasks: list[asyncio.Task[None]] = []
    try:
        async for page in list_cursor(client, PROJECTS, query=query):
            for project in page:
                if options.project_filter(project.id, project.name or ""):
                    projects.append(project)
                    if lists(project):
                        tasks.append(asyncio.create_task(read_one(project.id)))
        on_projects_listed()
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
