"""The inventory snapshot: plain immutable data, the only thing the cache holds.

A refresh builds a new ``Inventory``; nothing ever mutates one, so a scrape can
render it from any thread while the next refresh is being built.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

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
class Inventory:
    """What the organization looked like at ``taken_at`` (unix seconds)."""

    projects: tuple[ProjectRecord, ...]
    taken_at: float

    @property
    def key_count(self) -> int:
        return sum(len(project.keys) for project in self.projects if project.keys is not None)
