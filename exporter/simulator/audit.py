"""The organization's audit log: events kept sorted as the API lists them, newest first.

Events are held in ascending `(effective_at, insertion)` order, so the common
case (a new event at the wall clock) is an append, a late event with an older
`effective_at` is one bisected insert, and a page is found by bisecting the
`effective_at` range and the cursor's place, never by a scan of the whole log.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from exporter.simulator.ordered import Page, UnknownCursorError

AuditActorKind = Literal["session", "user_api_key", "service_account_api_key"]
AUDIT_ACTOR_KINDS: tuple[AuditActorKind, ...] = (
    "session",
    "user_api_key",
    "service_account_api_key",
)
AUDIT_EVENT_ID_PREFIX = "audit_log-"


@dataclass(frozen=True, slots=True)
class SimAuditActor:
    kind: AuditActorKind
    user_id: str | None = None
    user_email: str | None = None
    ip_address: str | None = None
    api_key_id: str | None = None  # the tracking id, for the api-key kinds
    service_account_id: str | None = None

    def ids(self) -> tuple[str, ...]:
        """What `actor_ids[]` matches: the user, service account or key tracking id."""
        return tuple(i for i in (self.user_id, self.service_account_id, self.api_key_id) if i)


@dataclass(frozen=True, slots=True)
class SimAuditEvent:
    id: str  # "audit_log-" + random, unique
    type: str  # any string: unknown types too
    effective_at: int
    project_id: str | None
    project_name: str | None
    actor: SimAuditActor | None  # None -> "actor": null on the wire
    details: Mapping[str, Any]  # the object under the key named after `type`

    def resource_ids(self) -> tuple[str, ...]:
        """What `resource_ids[]` matches: the target's id, or the ids of the configurations
        or certificates a bulk (de)activation names."""
        found: list[str] = []
        target = self.details.get("id")
        if isinstance(target, str):
            found.append(target)
        for listed in ("configs", "certificates"):
            items = self.details.get(listed)
            if isinstance(items, list):
                found += [i["id"] for i in items if isinstance(i, dict) and "id" in i]
        return tuple(found)


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """The listing's filters; None means no filter. `since`/`until` are inclusive bounds."""

    since: int | None = None
    until: int | None = None
    event_types: frozenset[str] | None = None
    project_ids: frozenset[str] | None = None
    actor_ids: frozenset[str] | None = None
    actor_emails: frozenset[str] | None = None
    resource_ids: frozenset[str] | None = None

    def keeps(self, event: SimAuditEvent) -> bool:
        if self.event_types is not None and event.type not in self.event_types:
            return False
        if self.project_ids is not None and event.project_id not in self.project_ids:
            return False
        actor = event.actor
        if self.actor_ids is not None and (actor is None or self.actor_ids.isdisjoint(actor.ids())):
            return False
        if self.actor_emails is not None and (
            actor is None or actor.user_email not in self.actor_emails
        ):
            return False
        return self.resource_ids is None or not self.resource_ids.isdisjoint(event.resource_ids())

    def filters_items(self) -> bool:
        """Whether anything beyond the `effective_at` range (which is bisected) is asked."""
        return any(
            f is not None
            for f in (
                self.event_types,
                self.project_ids,
                self.actor_ids,
                self.actor_emails,
                self.resource_ids,
            )
        )


_SortKey = tuple[int, int]  # (effective_at, insertion sequence)


class AuditLog:
    """Every recorded event, in listing order by `effective_at` then insertion."""

    def __init__(self) -> None:
        self._keys: list[_SortKey] = []  # ascending: the listing walks it from the end
        self._events: list[SimAuditEvent] = []
        self._key_of: dict[str, _SortKey] = {}
        self._sequence = 0

    def __len__(self) -> int:
        return len(self._events)

    def __iter__(self) -> Iterator[SimAuditEvent]:
        """Newest first, as listed."""
        return reversed(self._events)

    def add(self, event: SimAuditEvent) -> None:
        if event.id in self._key_of:
            raise ValueError(f"duplicate audit event id {event.id!r}")
        key = (event.effective_at, self._sequence)
        self._sequence += 1
        index = bisect.bisect_left(self._keys, key)
        self._keys.insert(index, key)
        self._events.insert(index, event)
        self._key_of[event.id] = key

    def page(
        self,
        *,
        query: AuditQuery,
        limit: int,
        after: str | None = None,
        before: str | None = None,
    ) -> Page[SimAuditEvent]:
        """Up to `limit` kept events, newest first: older than `after`, or the ones just
        newer than `before` (the previous page); from the newest when neither.

        `has_more` says whether more kept events lie beyond the page in the direction
        walked (older for `after` and the first page, newer for `before`). A cursor is a
        place in the log: one that the filters leave out still marks where to go on.
        """
        low = 0 if query.since is None else bisect.bisect_left(self._keys, (query.since, -1))
        high = (
            len(self._keys)
            if query.until is None
            else bisect.bisect_left(self._keys, (query.until + 1, -1))
        )
        if after is not None:
            high = min(high, self._index_of(after))
        keep = query.keeps if query.filters_items() else None
        if before is not None:
            low = max(low, self._index_of(before) + 1)
            newer = _collect(self._events, range(low, high), limit, keep)
            return Page(list(reversed(newer.items)), newer.has_more)
        return _collect(self._events, range(high - 1, low - 1, -1), limit, keep)

    def _index_of(self, event_id: str) -> int:
        key = self._key_of.get(event_id)
        if key is None:
            raise UnknownCursorError(event_id)
        return bisect.bisect_left(self._keys, key)


def _collect(
    events: list[SimAuditEvent],
    indices: range,
    limit: int,
    keep: Callable[[SimAuditEvent], bool] | None,
) -> Page[SimAuditEvent]:
    if keep is None:
        # Unfiltered: the page is a slice of the range, no per-event work.
        chosen = indices[:limit]
        return Page([events[i] for i in chosen], has_more=len(indices) > limit)
    items: list[SimAuditEvent] = []
    for index in indices:
        event = events[index]
        if not keep(event):
            continue
        if len(items) == limit:
            return Page(items, has_more=True)
        items.append(event)
    return Page(items, has_more=False)


# Scopes a project key can be restricted to (the spec's examples and their siblings).
KEY_SCOPES: tuple[str, ...] = (
    "api.model.read",
    "api.model.request",
    "api.files.read",
    "api.files.write",
    "api.responses.write",
    "api.assistants.write",
)


# The id prefix of each resource family's objects, for a default detail's `id`.
_ID_PREFIXES: dict[str, str] = {
    "api_key": "key_",
    "certificate": "cert_",
    "checkpoint": "cp_",
    "group": "group_",
    "invite": "invite-",
    "ip_allowlist": "ipcfg_",
    "organization": "org-",
    "project": "proj_",
    "rate_limit": "rl-",
    "role": "role_",
    "service_account": "svc_acct_",
    "user": "user-",
}
LOGIN_FAILURE = {"error_code": "invalid_credentials", "error_message": "Wrong email or password."}


def default_details(event_type: str, draw_id: Callable[[str], str]) -> dict[str, Any]:
    """A plausible detail object for `event_type` (its spec schema's fields); `draw_id`
    makes an id from a prefix. Unknown types get an `{"id"}` like most known ones."""
    family = event_type.split(".", 1)[0]
    target = draw_id(_ID_PREFIXES.get(family, "obj_"))
    if event_type in ("login.succeeded", "logout.succeeded"):
        return {}
    if event_type in ("login.failed", "logout.failed"):
        return dict(LOGIN_FAILURE)
    if event_type.startswith("ip_allowlist.config."):
        return {"configs": [{"id": target, "name": "office network"}]}
    if event_type.startswith("certificates."):
        return {"certificates": [{"id": target, "name": "gateway-mtls"}]}
    if event_type == "api_key.created":
        return {"id": target, "data": {"scopes": ["api.model.read", "api.model.request"]}}
    if event_type == "api_key.updated":
        return {"id": target, "changes_requested": {"scopes": ["api.model.request"]}}
    if event_type in ("service_account.created", "user.added"):
        return {"id": target, "data": {"role": "member"}}
    if event_type in ("service_account.updated", "user.updated"):
        return {"id": target, "changes_requested": {"role": "owner"}}
    if event_type == "invite.sent":
        return {"id": target, "data": {"email": "invitee@example.com", "role": "member"}}
    if event_type == "project.created":
        return {"id": target, "data": {"name": "new-project", "title": "New project"}}
    return {"id": target}
