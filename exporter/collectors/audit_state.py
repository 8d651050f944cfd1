"""Counters from the audit log's event stream, each event counted exactly once.

The audit log lists events newest first, each with an id and an ``effective_at`` second.
Events can show up late, with an ``effective_at`` below the newest one already seen, so
each poll re-reads an overlap below the newest event it has seen (the watermark) and
drops the ids it already holds. ``AuditState`` is what survives polls:

- the counting start (the first poll's start): an event below it is history and is never
  counted, so a restart counts nothing again (Prometheus sees a counter reset);
- the counters per (event type, project id, actor type);
- the newest ``effective_at`` per event type;
- the scopes per API key, from the newest ``api_key.created`` / ``api_key.updated``
  (``api_key.deleted`` removes the key; a late event older than the known one changes
  nothing);
- the ids seen whose ``effective_at`` is within the overlap of the watermark: the next
  poll lists only events above ``watermark - overlap``, so older ids can be forgotten,
  and memory for ids is bounded by the events of one overlap.

A state is immutable: ``advance`` returns a new one, so a poll that fails at any page
simply keeps the previous state (applying only the newest pages would move the watermark
past the older events not read yet).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal

ActorType = Literal["session", "user_api_key", "service_account_api_key", "none"]
ACTOR_TYPES: Final[tuple[ActorType, ...]] = (
    "session",
    "user_api_key",
    "service_account_api_key",
    "none",
)
# The alerted types, present at 0 (project "" and every actor type) from the first
# poll, so increase() sees their first event.
ALERTED_TYPES: Final[tuple[str, ...]] = (
    "api_key.created",
    "api_key.deleted",
    "api_key.updated",
    "login.failed",
    "ip_allowlist.config.deactivated",
    "service_account.created",
    "user.added",
    "user.updated",
    "invite.sent",
)
CounterKey = tuple[str, str, str]  # (event type, project id, actor type)


@dataclass(frozen=True, slots=True)
class ScopeChange:
    """What a key event says about the key's scopes. ``scopes`` None: the key was deleted."""

    key_id: str
    project_id: str
    scopes: tuple[str, ...] | None


@dataclass(frozen=True, slots=True)
class Event:
    """One audit event, reduced to what the state needs (no personal data)."""

    id: str
    type: str
    effective_at: int
    project_id: str  # "" for an event without a project
    actor_type: ActorType
    scope_change: ScopeChange | None = None

    @property
    def counter_key(self) -> CounterKey:
        return self.type, self.project_id, self.actor_type


@dataclass(frozen=True, slots=True)
class KeyScopes:
    """A key's scopes as of ``at``; ``deleted`` keeps a deletion in mind (no series) so
    that a late, older ``api_key.created`` does not bring the key back."""

    project_id: str
    scopes: tuple[str, ...]  # sorted, unique; empty: unrestricted
    at: int
    deleted: bool = False


@dataclass(frozen=True, slots=True)
class AuditState:
    counting_start: int
    overlap: int
    counters: Mapping[CounterKey, int] = field(default_factory=dict)
    last_event_at: Mapping[str, int] = field(default_factory=dict)
    keys: Mapping[str, KeyScopes] = field(default_factory=dict)
    seen: Mapping[str, int] = field(default_factory=dict)  # id -> effective_at
    newest: int | None = None  # the newest effective_at seen

    @property
    def watermark(self) -> int:
        """The newest event seen, never below the counting start (a backfill that saw
        only old events must not make every poll re-read days of history)."""
        return self.counting_start if self.newest is None else max(self.newest, self.counting_start)

    @property
    def window_start(self) -> int:
        """The next poll lists the events strictly after this (``effective_at[gt]``)."""
        return self.watermark - self.overlap

    @property
    def counted(self) -> int:
        return sum(self.counters.values())

    def advance(
        self, events: Sequence[Event], *, listed_after: int, count: bool = True
    ) -> tuple[AuditState, list[Event]]:
        """The state after a poll that listed every event after ``listed_after``
        (newest first, as the API lists them); and the events it counted, oldest first.

        ``count=False`` is the backfill: it learns scopes and times and marks ids seen,
        counting nothing. An event at or below ``listed_after`` is ignored (the API
        should not list it, and the ids below the window are forgotten, so it could not
        be recognised next time).
        """
        counters = dict(self.counters)
        last_event_at = dict(self.last_event_at)
        keys = dict(self.keys)
        seen = dict(self.seen)
        newest = self.newest
        counted: list[Event] = []
        # Oldest first: of two changes to one key in one second, the one listed later
        # (recorded earlier) is applied first and the newer one wins.
        for event in reversed(events):
            if event.effective_at <= listed_after or event.id in seen:
                continue
            seen[event.id] = event.effective_at
            newest = event.effective_at if newest is None else max(newest, event.effective_at)
            if event.effective_at > last_event_at.get(event.type, -1):
                last_event_at[event.type] = event.effective_at
            if event.scope_change is not None:
                _apply_scopes(keys, event.scope_change, event.effective_at)
            if count and event.effective_at >= self.counting_start:
                key = event.counter_key
                counters[key] = counters.get(key, 0) + 1
                counted.append(event)
        state = AuditState(
            self.counting_start, self.overlap, counters, last_event_at, keys, seen, newest
        )
        return state._forget_below_window(), counted

    def _forget_below_window(self) -> AuditState:
        """Ids and deletions at or below the next window's start: the next poll does not
        list them, so nothing needs them."""
        start = self.window_start
        seen = {event_id: at for event_id, at in self.seen.items() if at > start}
        keys = {
            key_id: known
            for key_id, known in self.keys.items()
            if not known.deleted or known.at > start
        }
        return AuditState(
            self.counting_start,
            self.overlap,
            self.counters,
            self.last_event_at,
            keys,
            seen,
            self.newest,
        )

    def counter_samples(self) -> Iterable[tuple[CounterKey, int]]:
        """Every counter, and the alerted types at 0 where nothing was counted yet."""
        yield from self.counters.items()
        for event_type in ALERTED_TYPES:
            for actor_type in ACTOR_TYPES:
                key = (event_type, "", actor_type)
                if key not in self.counters:
                    yield key, 0

    def live_keys(self) -> Iterable[tuple[str, KeyScopes]]:
        """Keys whose scopes are known and that were not deleted."""
        return ((key_id, known) for key_id, known in self.keys.items() if not known.deleted)


def _apply_scopes(keys: dict[str, KeyScopes], change: ScopeChange, at: int) -> None:
    known = keys.get(change.key_id)
    if known is not None and at < known.at:
        return  # a late event older than what is known
    if change.scopes is None:
        project_id = known.project_id if known else change.project_id
        keys[change.key_id] = KeyScopes(project_id, (), at, deleted=True)
        return
    project_id = change.project_id or (known.project_id if known else "")
    keys[change.key_id] = KeyScopes(project_id, tuple(sorted(set(change.scopes))), at)
