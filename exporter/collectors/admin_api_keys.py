"""The organization's admin API keys: ``GET /organization/admin_api_keys``.

Admin keys can do anything in the organization, the exporter's own key among them.
The exporter recognises its own key by matching each key's redacted value (visible
prefix and suffix, ``sk-admin...def``) against the key it holds; it says only which
key id matched, and only when exactly one does. No redacted value is exported.

Example exposition for one key::

    openai_admin_api_key_info{admin_api_key_id="key_a",admin_api_key_name="ci",...} 1
    openai_admin_api_key_created_timestamp_seconds{admin_api_key_id="key_a"} 1.7e9
    openai_admin_api_key_expires_timestamp_seconds{admin_api_key_id="key_a"} 1.8e9
    openai_admin_api_key_never_expires{admin_api_key_id="key_a"} 0
    openai_admin_api_key_never_used{admin_api_key_id="key_a"} 1
    openai_exporter_admin_api_key_info{admin_api_key_id="key_a"} 1
    openai_admin_api_key_age_seconds{admin_api_key_id="key_a"} 86400
    openai_admin_api_key_idle_seconds{admin_api_key_id="key_a"} 86400
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pydantic import Field

from exporter.collectors.base import Attempt, Collector, Family, Samples
from exporter.snapshot import Snapshot
from exporter.upstream.client import AdminApiClient
from exporter.upstream.lister import CursorEndpoint, list_all
from exporter.upstream.models import Timestamp, Wire


class ApiAdminKeyOwner(Wire):
    # The schema says the type is always "user"; the spec's own example shows a service
    # account. Any string is kept as it comes.
    type: str | None = None
    id: str | None = None
    name: str | None = None
    role: str | None = None


class ApiAdminKey(Wire):
    id: str = Field(min_length=1)
    name: str | None = None
    redacted_value: str
    created_at: Timestamp
    expires_at: Timestamp | None
    last_used_at: Timestamp | None = None
    owner: ApiAdminKeyOwner


ADMIN_API_KEYS = CursorEndpoint(
    "admin_api_keys",
    "/organization/admin_api_keys",
    ApiAdminKey,
    permission="read access to admin API keys (Organization Administration, api.management.read)",
)


@dataclass(frozen=True, slots=True)
class AdminKeyRecord:
    """One admin key, without its redacted value."""

    id: str
    name: str
    created_at: int
    expires_at: int | None
    last_used_at: int | None
    owner_type: str
    owner_id: str
    owner_name: str
    owner_role: str


@dataclass(frozen=True, slots=True)
class AdminKeys:
    keys: tuple[AdminKeyRecord, ...]
    own_key_id: str | None  # the key the exporter authenticates with, if exactly one matched

    def __len__(self) -> int:
        return len(self.keys)


def admin_key_record(key: ApiAdminKey) -> AdminKeyRecord:
    owner = key.owner
    return AdminKeyRecord(
        id=key.id,
        name=key.name or "",
        created_at=key.created_at,
        expires_at=key.expires_at,
        last_used_at=key.last_used_at,
        owner_type=owner.type or "",
        owner_id=owner.id or "",
        owner_name=owner.name or "",
        owner_role=owner.role or "",
    )


ID = ("admin_api_key_id",)
INFO = Family(
    "openai_admin_api_key_info",
    "One series per admin API key, carrying its name and owner.",
    (
        "admin_api_key_id",
        "admin_api_key_name",
        "owner_type",
        "owner_id",
        "owner_name",
        "owner_role",
    ),
)
CREATED = Family(
    "openai_admin_api_key_created_timestamp_seconds",
    "Unix time at which the admin API key was created.",
    ID,
)
LAST_USED = Family(
    "openai_admin_api_key_last_used_timestamp_seconds",
    "Unix time at which the admin API key was last used; absent for keys never used.",
    ID,
)
EXPIRES = Family(
    "openai_admin_api_key_expires_timestamp_seconds",
    "Unix time at which the admin API key expires; absent for keys that never expire.",
    ID,
)
NEVER_EXPIRES = Family(
    "openai_admin_api_key_never_expires", "1 if the admin API key never expires, else 0.", ID
)
NEVER_USED = Family(
    "openai_admin_api_key_never_used", "1 if the admin API key has never been used, else 0.", ID
)
OWN_KEY = Family(
    "openai_exporter_admin_api_key_info",
    "1 for the admin API key this exporter authenticates with (matched on its redacted "
    "value); absent unless exactly one key matches.",
    ID,
)
AGE = Family(
    "openai_admin_api_key_age_seconds",
    "Seconds since the admin API key was created.",
    ID,
    since=True,
)
IDLE = Family(
    "openai_admin_api_key_idle_seconds",
    "Seconds since the admin API key was last used, or since it was created if never used.",
    ID,
    since=True,
)


class AdminApiKeysCollector(Collector[AdminKeys]):
    name = "admin_api_keys"
    endpoints = (ADMIN_API_KEYS.name,)
    families = (INFO, CREATED, LAST_USED, EXPIRES, NEVER_EXPIRES, NEVER_USED, OWN_KEY, AGE, IDLE)

    async def fetch(self, client: AdminApiClient, attempt: Attempt[AdminKeys]) -> None:
        listed = await list_all(client, ADMIN_API_KEYS)
        own = [key.id for key in listed if client.holds_key_redacted_as(key.redacted_value)]
        rows = AdminKeys(
            tuple(admin_key_record(key) for key in listed),
            own_key_id=own[0] if len(own) == 1 else None,
        )
        attempt.build = lambda: rows

    def samples(self, rows: AdminKeys, snapshot: Snapshot) -> Iterable[tuple[Family, Samples]]:
        keys = rows.keys
        yield (
            INFO,
            (
                ((k.id, k.name, k.owner_type, k.owner_id, k.owner_name, k.owner_role), 1)
                for k in keys
            ),
        )
        yield CREATED, (((k.id,), k.created_at) for k in keys)
        yield LAST_USED, (((k.id,), k.last_used_at) for k in keys if k.last_used_at is not None)
        yield EXPIRES, (((k.id,), k.expires_at) for k in keys if k.expires_at is not None)
        yield NEVER_EXPIRES, (((k.id,), 1 if k.expires_at is None else 0) for k in keys)
        yield NEVER_USED, (((k.id,), 1 if k.last_used_at is None else 0) for k in keys)
        yield OWN_KEY, [((rows.own_key_id,), 1)] if rows.own_key_id is not None else []
        yield AGE, (((k.id,), k.created_at) for k in keys)
        yield IDLE, (((k.id,), k.last_used_at or k.created_at) for k in keys)

    def summary(self, rows: AdminKeys) -> str:
        own = "the exporter's own identified" if rows.own_key_id else "the exporter's own not found"
        return f"{len(rows.keys)} admin keys, {own}"
