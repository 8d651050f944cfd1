"""The audit log: ``GET /organization/audit_logs``, each event counted exactly once.

Every ``--audit.interval`` (default 1m) a poll lists the events after
``watermark - --audit.overlap`` (``effective_at[gt]``, ``limit=100``), newest first,
every page until ``has_more`` is false, and ``audit_state.AuditState`` counts the ids it
has not seen. The first poll is a backfill of ``--audit.backfill`` (default 7d, at most
``--audit.backfill-max-pages`` pages): it learns the key scopes and the last event times
and counts nothing; counting starts at that poll's start. A poll that fails at any page
applies nothing and the next one re-reads the window.

Audit logging may be off for the organization (an owner switches it on, for good): the
refusal fails this collector alone, with a line that says so; ``openai_up`` does not
count this collector (``openai_exporter_collector_success{collector="audit_logs"}`` does).

With ``--audit.log-events`` each newly counted event is also one JSON line on stdout
(logger ``exporter.audit``, see ``event_fields``).

Example exposition::

    openai_audit_events_total{event_type="api_key.created",project_id="proj_a",
                              actor_type="session"} 3
    openai_audit_last_event_timestamp_seconds{event_type="api_key.created"} 1.7e9
    openai_api_key_scopes_info{project_id="proj_a",api_key_id="key_1",
                               scopes="api.model.read,api.model.request"} 1
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Annotated, Any

from pydantic import Field, ValidationError, ValidatorFunctionWrapHandler, WrapValidator

from exporter.collectors.audit_state import ActorType, AuditState, Event, ScopeChange
from exporter.collectors.base import Attempt, Collector, Family, Samples
from exporter.logs import AUDIT_LOGGER
from exporter.snapshot import Snapshot
from exporter.upstream.client import AdminApiClient, Query
from exporter.upstream.lister import CursorEndpoint, PageBoundReached, list_cursor
from exporter.upstream.models import Timestamp, Wire

log = logging.getLogger(__name__)
# The events themselves, one JSON line each (exporter.logs sends them to stdout).
EVENTS_LOG = logging.getLogger(AUDIT_LOGGER)


def _or_none(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    """A detail of a shape we do not expect is ignored, not a failed poll."""
    try:
        return handler(value)
    except ValidationError:
        return None


Lenient = WrapValidator(_or_none)


class ApiUser(Wire):
    id: str | None = None
    email: str | None = None


class ApiSession(Wire):
    user: Annotated[ApiUser | None, Lenient] = None
    ip_address: str | None = None


class ApiServiceAccount(Wire):
    id: str | None = None


class ApiKeyActor(Wire):
    id: str | None = None  # the key's tracking id
    type: str | None = None  # user or service_account
    user: Annotated[ApiUser | None, Lenient] = None
    service_account: Annotated[ApiServiceAccount | None, Lenient] = None


class ApiActor(Wire):
    type: str | None = None  # session or api_key
    session: Annotated[ApiSession | None, Lenient] = None
    api_key: Annotated[ApiKeyActor | None, Lenient] = None


class ApiProject(Wire):
    id: str | None = None
    name: str | None = None


class ScopeList(Wire):
    # A list: under a lenient (wrap) validator the value is already Python, and strict
    # mode takes no list for a tuple.
    scopes: list[str] | None = None


# Scopes of a shape we do not expect make the whole detail ignored (never "no scopes",
# which would read as unrestricted).
class KeyCreated(Wire):
    id: str = Field(min_length=1)
    data: ScopeList | None = None


class KeyUpdated(Wire):
    id: str = Field(min_length=1)
    changes_requested: ScopeList | None = None


class KeyDeleted(Wire):
    id: str = Field(min_length=1)


class ApiAuditEvent(Wire):
    """An event: id, type and time are required (else the page is a bad response); the
    rest is read where its shape is the spec's and ignored where it is not."""

    id: str = Field(min_length=1)
    type: str = Field(min_length=1)  # any string: a type we do not know is counted too
    effective_at: Timestamp
    project: Annotated[ApiProject | None, Lenient] = None
    actor: Annotated[ApiActor | None, Lenient] = None
    key_created: Annotated[KeyCreated | None, Lenient] = Field(None, alias="api_key.created")
    key_updated: Annotated[KeyUpdated | None, Lenient] = Field(None, alias="api_key.updated")
    key_deleted: Annotated[KeyDeleted | None, Lenient] = Field(None, alias="api_key.deleted")


AUDIT_LOGS = CursorEndpoint(
    "audit_logs",
    "/organization/audit_logs",
    ApiAuditEvent,
    # A refusal is most likely audit logging being off: the line says what to do.
    permission="read access to Organization Administration (api.management.read), in an "
    "organization whose audit logging is on (an owner enables it in the organization's "
    "settings, Data controls; it cannot be undone; --no-collector.audit_logs switches "
    "this collector off)",
)

EVENTS = Family(
    "openai_audit_events",
    "Audit log events since the exporter started (a restart is a reset), by type, project "
    "(empty: none) and actor type (session, user_api_key, service_account_api_key, none). "
    "Read every --audit.interval.",
    ("event_type", "project_id", "actor_type"),
    type="counter",
)
LAST_EVENT = Family(
    "openai_audit_last_event_timestamp_seconds",
    "Unix time of the newest audit log event of each type seen, the start's backfill included.",
    ("event_type",),
)
SCOPES = Family(
    "openai_api_key_scopes_info",
    "Scopes of each project API key (sorted, comma-joined; empty: unrestricted) from its "
    "newest api_key.created or api_key.updated in the audit log; no series for a key whose "
    "event is out of reach.",
    ("project_id", "api_key_id", "scopes"),
)


def actor_type(actor: ApiActor | None) -> ActorType:
    if actor is None:
        return "none"
    if actor.type == "session":
        return "session"
    if actor.type == "api_key" and actor.api_key is not None:
        if actor.api_key.type == "user":
            return "user_api_key"
        if actor.api_key.type == "service_account":
            return "service_account_api_key"
    return "none"


def to_event(item: ApiAuditEvent) -> Event:
    project_id = (item.project.id if item.project else None) or ""
    return Event(
        item.id,
        item.type,
        item.effective_at,
        project_id,
        actor_type(item.actor),
        _scope_change(item, project_id),
    )


def _scope_change(item: ApiAuditEvent, project_id: str) -> ScopeChange | None:
    # No scopes on creation (empty, or data/scopes absent): the key is unrestricted.
    if item.type == "api_key.created" and item.key_created is not None:
        data = item.key_created.data
        scopes = data.scopes if data is not None and data.scopes is not None else ()
        return ScopeChange(item.key_created.id, project_id, tuple(scopes))
    # An update that names no scopes leaves them as they are.
    if item.type == "api_key.updated" and item.key_updated is not None:
        changes = item.key_updated.changes_requested
        if changes is None or changes.scopes is None:
            return None
        return ScopeChange(item.key_updated.id, project_id, tuple(changes.scopes))
    if item.type == "api_key.deleted" and item.key_deleted is not None:
        return ScopeChange(item.key_deleted.id, project_id, None)
    return None


def event_fields(item: ApiAuditEvent, *, personal_data: bool) -> dict[str, Any]:
    """The fields of an event's log line. Ids always (the user ids are those the users
    collector exports too); emails and IP addresses only with ``personal_data``. The
    detail object is never logged: some carry emails (``invite.sent``)."""
    fields: dict[str, Any] = {
        "id": item.id,
        "type": item.type,
        "effective_at": item.effective_at,
        "project_id": item.project.id if item.project else None,
        "project_name": item.project.name if item.project else None,
        "actor_type": actor_type(item.actor),
        "actor_id": None,
    }
    actor = item.actor
    user: ApiUser | None = None
    if actor is not None and actor.type == "session" and actor.session is not None:
        user = actor.session.user
        fields["actor_id"] = user.id if user else None
        if personal_data:
            fields["ip_address"] = actor.session.ip_address
    elif actor is not None and actor.api_key is not None:
        key = actor.api_key
        fields["actor_id"] = key.id
        user = key.user
        if key.service_account is not None:
            fields["service_account_id"] = key.service_account.id
    if user is not None:
        fields["user_id"] = user.id
        if personal_data:
            fields["user_email"] = user.email
    return fields


class AuditLogsCollector(Collector[AuditState]):
    name = "audit_logs"
    endpoints = (AUDIT_LOGS.name,)
    families = (EVENTS, LAST_EVENT, SCOPES)
    in_up = False  # audit logging off is the organization's choice, not an outage

    async def fetch(self, client: AdminApiClient, attempt: Attempt[AuditState]) -> None:
        options = self.options
        previous = attempt.previous
        logged = options.audit_log_events and previous is not None
        if previous is None:
            state = AuditState(int(attempt.started_at), int(options.audit_overlap))
            after = int(attempt.started_at - options.audit_backfill)
        else:
            state, after = previous, previous.window_start
        events, lines, cut = await self._read(client, after, logged, backfill=previous is None)
        new_state, counted = state.advance(events, listed_after=after, count=previous is not None)
        attempt.build = lambda: new_state
        if cut:
            log.info(
                "audit_logs: the backfill stopped at its bound of %d pages (%d events, the "
                "oldest at %d); counting starts now all the same",
                options.audit_backfill_max_pages,
                len(events),
                events[-1].effective_at if events else after,
            )
        for event in counted:
            fields = lines.get(event.id)
            if fields is not None:
                EVENTS_LOG.info(
                    "audit event %s %s", event.id, event.type, extra={"audit_event": fields}
                )

    async def _read(
        self, client: AdminApiClient, after: int, logged: bool, *, backfill: bool
    ) -> tuple[list[Event], dict[str, dict[str, Any]], bool]:
        """Every event after ``after``, newest first; their log fields if ``logged``;
        whether a backfill stopped at its page bound."""
        query: Query = [("effective_at[gt]", str(after))]
        events: list[Event] = []
        lines: dict[str, dict[str, Any]] = {}
        personal = self.options.audit_log_personal_data
        bound = self.options.audit_backfill_max_pages if backfill else None
        try:
            async for page in list_cursor(client, AUDIT_LOGS, query=query, max_pages=bound):
                for item in page:
                    events.append(to_event(item))
                    if logged:
                        lines[item.id] = event_fields(item, personal_data=personal)
        except PageBoundReached:
            if not backfill:
                raise
            return events, lines, True
        return events, lines, False

    def samples(self, rows: AuditState, snapshot: Snapshot) -> Iterable[tuple[Family, Samples]]:
        yield EVENTS, rows.counter_samples()
        yield LAST_EVENT, (((event_type,), at) for event_type, at in rows.last_event_at.items())
        yield (
            SCOPES,
            (
                ((known.project_id, key_id, ",".join(known.scopes)), 1)
                for key_id, known in rows.live_keys()
            ),
        )

    def summary(self, rows: AuditState) -> str:
        return f"{rows.counted} events counted since start, {len(rows.seen)} ids held"
