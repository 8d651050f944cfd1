"""The organization's members: ``GET /organization/users``.

Joined with the project keys (the ``api_keys`` collector's rows), the members tell which
user-owned key belongs to someone who is no longer in the organization. That family
exists only once the users listing has completed: a failed listing keeps the last
good members and never flags a key.

Example exposition::

    openai_user_info{user_id="user-1",user_name="Ada",role="owner"} 1
    openai_user_added_timestamp_seconds{user_id="user-1"} 1.7e9
    openai_user_api_key_last_used_timestamp_seconds{user_id="user-1"} 1.7e9
    openai_api_key_owner_in_organization{project_id="proj_a",api_key_id="key_a"} 0
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pydantic import Field

from exporter.collectors.api_keys import ProjectKeys
from exporter.collectors.base import Attempt, Collector, Family, Samples
from exporter.snapshot import Snapshot
from exporter.upstream.client import AdminApiClient
from exporter.upstream.lister import CursorEndpoint, list_all
from exporter.upstream.models import Timestamp, Wire


class ApiUser(Wire):
    id: str = Field(min_length=1)
    name: str | None = None
    email: str | None = None
    role: str | None = None  # owner or reader in the spec; the product has more: kept as is
    added_at: Timestamp
    api_key_last_used_at: Timestamp | None = None


USERS = CursorEndpoint(
    "users",
    "/organization/users",
    ApiUser,
    permission="read access to the organization's users "
    "(Organization Administration, api.management.read)",
)


@dataclass(frozen=True, slots=True)
class UserRecord:
    id: str
    name: str
    email: str
    role: str
    added_at: int
    api_key_last_used_at: int | None


@dataclass(frozen=True, slots=True)
class Members:
    users: tuple[UserRecord, ...]

    def __len__(self) -> int:
        return len(self.users)


ID = ("user_id",)
INFO = Family(
    "openai_user_info",
    "One series per member of the organization, carrying the name and role.",
    ("user_id", "user_name", "role"),
)
INFO_WITH_EMAIL = Family(INFO.name, INFO.help, (*INFO.labels, "user_email"))
ADDED = Family(
    "openai_user_added_timestamp_seconds",
    "Unix time at which the user joined the organization.",
    ID,
)
KEY_LAST_USED = Family(
    "openai_user_api_key_last_used_timestamp_seconds",
    "Unix time at which an API key of the user was last used; absent when none was.",
    ID,
)
OWNER_IN_ORGANIZATION = Family(
    "openai_api_key_owner_in_organization",
    "For each user-owned project API key: 1 if its owner is a member of the organization, "
    "0 if not. No series for service-account keys.",
    ("project_id", "api_key_id"),
)


class UsersCollector(Collector[Members]):
    name = "users"
    endpoints = (USERS.name,)
    families = (INFO, ADDED, KEY_LAST_USED, OWNER_IN_ORGANIZATION)
    reads = ("api_keys",)

    async def fetch(self, client: AdminApiClient, attempt: Attempt[Members]) -> None:
        listed = await list_all(client, USERS)
        rows = Members(
            tuple(
                UserRecord(
                    id=user.id,
                    name=user.name or "",
                    email=user.email or "",
                    role=user.role or "",
                    added_at=user.added_at,
                    api_key_last_used_at=user.api_key_last_used_at,
                )
                for user in listed
            )
        )
        attempt.build = lambda: rows

    def samples(self, rows: Members, snapshot: Snapshot) -> Iterable[tuple[Family, Samples]]:
        users = rows.users
        if self.options.emails:
            yield INFO_WITH_EMAIL, (((u.id, u.name, u.role, u.email), 1) for u in users)
        else:
            yield INFO, (((u.id, u.name, u.role), 1) for u in users)
        yield ADDED, (((u.id,), u.added_at) for u in users)
        yield (
            KEY_LAST_USED,
            (
                ((u.id,), u.api_key_last_used_at)
                for u in users
                if u.api_key_last_used_at is not None
            ),
        )
        yield OWNER_IN_ORGANIZATION, _owners_in_organization(rows, snapshot)

    def summary(self, rows: Members) -> str:
        return f"{len(rows.users)} members"


def _owners_in_organization(rows: Members, snapshot: Snapshot) -> Samples:
    keys_state = snapshot.get("api_keys")
    if keys_state is None:  # no key inventory to join with
        return []
    members = {user.id for user in rows.users}
    inventory: ProjectKeys = keys_state.rows
    return [
        ((project.id, key.id), 1 if key.owner_id in members else 0)
        for project in inventory.projects
        for key in project.keys or ()
        if key.owner_type == "user"
    ]
