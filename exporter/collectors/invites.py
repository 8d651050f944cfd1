"""Invitations to the organization: ``GET /organization/invites``.

Example exposition::

    openai_invite_info{invite_id="invite-1",role="reader",status="pending"} 1
    openai_invite_created_timestamp_seconds{invite_id="invite-1"} 1.7e9
    openai_invite_expires_timestamp_seconds{invite_id="invite-1"} 1.7e9
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


class ApiInvite(Wire):
    id: str = Field(min_length=1)
    email: str
    role: str  # owner or reader in the spec; an unknown role is kept as it comes
    status: str  # accepted, expired or pending in the spec; likewise
    created_at: Timestamp
    expires_at: Timestamp | None = None


INVITES = CursorEndpoint(
    "invites",
    "/organization/invites",
    ApiInvite,
    permission="read access to the organization's invites "
    "(Organization Administration, api.management.read)",
)


@dataclass(frozen=True, slots=True)
class InviteRecord:
    id: str
    email: str
    role: str
    status: str
    created_at: int
    expires_at: int | None


@dataclass(frozen=True, slots=True)
class Invites:
    invites: tuple[InviteRecord, ...]

    def __len__(self) -> int:
        return len(self.invites)


ID = ("invite_id",)
INFO = Family(
    "openai_invite_info",
    "One series per invitation to the organization, carrying its role and status.",
    ("invite_id", "role", "status"),
)
INFO_WITH_EMAIL = Family(INFO.name, INFO.help, (*INFO.labels, "invite_email"))
CREATED = Family(
    "openai_invite_created_timestamp_seconds", "Unix time at which the invite was sent.", ID
)
EXPIRES = Family(
    "openai_invite_expires_timestamp_seconds",
    "Unix time at which the invite expires; absent when the API gives none.",
    ID,
)


class InvitesCollector(Collector[Invites]):
    name = "invites"
    endpoints = (INVITES.name,)
    families = (INFO, CREATED, EXPIRES)

    async def fetch(self, client: AdminApiClient, attempt: Attempt[Invites]) -> None:
        listed = await list_all(client, INVITES)
        rows = Invites(
            tuple(
                InviteRecord(i.id, i.email, i.role, i.status, i.created_at, i.expires_at)
                for i in listed
            )
        )
        attempt.build = lambda: rows

    def samples(self, rows: Invites, snapshot: Snapshot) -> Iterable[tuple[Family, Samples]]:
        invites = rows.invites
        if self.options.emails:
            yield INFO_WITH_EMAIL, (((i.id, i.role, i.status, i.email), 1) for i in invites)
        else:
            yield INFO, (((i.id, i.role, i.status), 1) for i in invites)
        yield CREATED, (((i.id,), i.created_at) for i in invites)
        yield EXPIRES, (((i.id,), i.expires_at) for i in invites if i.expires_at is not None)

    def summary(self, rows: Invites) -> str:
        pending = sum(1 for invite in rows.invites if invite.status == "pending")
        return f"{len(rows.invites)} invites, {pending} pending"
