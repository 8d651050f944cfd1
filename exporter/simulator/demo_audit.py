"""The demo's audit log over time: a steady trickle each minute, and in the first
minutes one case for each audit alert.

The trickle, per minute after the start: one or two logins; a key created by a
service account's key every 10 minutes and one from a browser session every 30 (8
an hour: under the burst alert's 10); a key's scopes changed every 20 minutes; a key
deleted every hour; a failed login every 15 minutes (under the alert's 5 in 15).

The cases (seconds after the start, from CASES_START to CASES_END): none before 30 s,
because the exporter counts only events dated from its first audit poll, which comes with
the first scrape, a few seconds after the start; all within the first minute, so that an
end-to-end test sees each alert fire without waiting minutes:
- a key created from a session (OpenAIApiKeyCreatedFromSession) at 30 s;
- a key created with no scopes, unrestricted (OpenAIApiKeyUnrestricted), at 32 s;
- 12 keys created by automation between 34 and 56 s (OpenAIApiKeysCreatedBurst);
- 7 failed logins of one user between 35 and 53 s (OpenAILoginFailures);
- the IP allowlist deactivated (OpenAIIpAllowlistDeactivated) at 57 s;
- the session's key given other scopes (OpenAIApiKeyScopesChanged) at 59 s.

Everything is a function of the time since the start, so the log is the same however
often it is read; events are recorded when the clock passes them, never ahead. The
keys these events name are not added to the key listings: the demo's inventory stays
as it was (the audit log's key "tracking id" is not known to match a key's id anyway).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from exporter.simulator.audit import KEY_SCOPES, AuditActorKind, SimAuditActor
from exporter.simulator.organization import Organization

MINUTE = 60
CASES_START = 30  # seconds after the start: no case before (the exporter's first poll)
CASES_END = 60  # seconds after the start: every case has happened by then
BURST_KEYS = 12
LOGIN_FAILURES = 7
SESSION_KEY_ID = "key_demoFromSession0"
UNRESTRICTED_KEY_ID = "key_demoUnrestricted"
BURST_KEY_IDS = tuple(f"key_demoBurst{n:07d}" for n in range(BURST_KEYS))
ALLOWLIST_CONFIG = {"id": "ipcfg_demoOfficeNetwork", "name": "office network"}
# The brute-forcing client's address: a documentation address (TEST-NET-3), nobody's.
FAILING_LOGIN_IP = "203.0.113.66"

Record = Callable[[Organization, int], object]


@dataclass(frozen=True, slots=True)
class _Event:
    offset: int  # seconds after the start
    record: Record  # records the event at the given effective_at


class DemoAuditTimeline:
    """Records the demo's audit events up to the clock, each once, in time order."""

    def __init__(self, org: Organization, start: int) -> None:
        self.org = org
        self.start = start
        self._recorded_until = start  # events at or before this are in the log
        projects = org.projects()
        self._projects: list[str | None] = [p.id for p in projects] or [None]
        owner = next((m for m in org.members() if m.role == "owner"), None)
        self._owner = SimAuditActor(
            "session",
            user_id=owner.id if owner else None,
            user_email=owner.email if owner else None,
            ip_address="203.0.113.10",
        )
        self._cases = sorted(self._case_events(), key=lambda e: e.offset)

    def record_until(self, now: int) -> None:
        """Records every event after the last call and at or before `now`."""
        if now <= self._recorded_until:
            return
        first = (self._recorded_until - self.start) // MINUTE
        last = (now - self.start) // MINUTE
        due = [e for e in self._cases if self._is_due(e, now)]
        for minute in range(max(0, first), last + 1):
            due += [e for e in self._trickle(minute) if self._is_due(e, now)]
        for event in sorted(due, key=lambda e: e.offset):
            event.record(self.org, self.start + event.offset)
        self._recorded_until = now

    def _is_due(self, event: _Event, now: int) -> bool:
        return self._recorded_until < self.start + event.offset <= now

    # -- the trickle -----------------------------------------------------------

    def _trickle(self, minute: int) -> list[_Event]:
        rng = random.Random(f"demo-audit-{minute}")
        base = minute * MINUTE
        events = [
            _Event(base + rng.randrange(MINUTE), _login_succeeded)
            for _ in range(rng.randrange(1, 3))
        ]
        if minute % 15 == 8:
            events.append(_Event(base + rng.randrange(MINUTE), _login_failed(None)))
        if minute % 10 == 4:
            events.append(_Event(base + 20, self._created(minute, "service_account_api_key")))
        if minute % 30 == 17:
            events.append(_Event(base + 40, self._created(minute, "session")))
        if minute % 20 == 13:
            events.append(_Event(base + 30, self._updated(minute - 9)))
        if minute % 60 == 50:
            events.append(_Event(base + 50, self._deleted(minute - 46)))
        return events

    def _project_of(self, minute: int) -> str | None:
        return self._projects[minute % len(self._projects)]

    def _created(self, minute: int, actor: AuditActorKind) -> Record:
        project = self._project_of(minute)
        scopes = sorted(random.Random(f"demo-audit-scopes-{minute}").sample(KEY_SCOPES, 2))

        def record(org: Organization, at: int) -> object:
            return org.record_audit_event(
                "api_key.created",
                effective_at=at,
                project_id=project,
                actor=actor,
                details={"id": _trickle_key_id(minute), "data": {"scopes": scopes}},
            )

        return record

    def _updated(self, created: int) -> Record:
        project = self._project_of(created)

        def record(org: Organization, at: int) -> object:
            return org.record_audit_event(
                "api_key.updated",
                effective_at=at,
                project_id=project,
                details={
                    "id": _trickle_key_id(created),
                    "changes_requested": {"scopes": ["api.model.request"]},
                },
            )

        return record

    def _deleted(self, created: int) -> Record:
        project = self._project_of(created)

        def record(org: Organization, at: int) -> object:
            return org.record_audit_event(
                "api_key.deleted",
                effective_at=at,
                project_id=project,
                actor="service_account_api_key",
                details={"id": _trickle_key_id(created)},
            )

        return record

    # -- the alert cases -------------------------------------------------------

    def _case_events(self) -> list[_Event]:
        project = self._projects[0]
        owner = self._owner

        def key(key_id: str, scopes: list[str], *, by_owner: bool) -> Record:
            def record(org: Organization, at: int) -> object:
                return org.record_audit_event(
                    "api_key.created",
                    effective_at=at,
                    project_id=project,
                    actor=owner if by_owner else "service_account_api_key",
                    details={"id": key_id, "data": {"scopes": scopes}},
                )

            return record

        def allowlist_off(org: Organization, at: int) -> object:
            return org.record_audit_event(
                "ip_allowlist.config.deactivated",
                effective_at=at,
                actor=owner,
                details={"configs": [dict(ALLOWLIST_CONFIG)]},
            )

        def scopes_changed(org: Organization, at: int) -> object:
            return org.record_audit_event(
                "api_key.updated",
                effective_at=at,
                project_id=project,
                actor=owner,
                details={"id": SESSION_KEY_ID, "changes_requested": {"scopes": ["api.model.read"]}},
            )

        failing = SimAuditActor(
            "session",
            user_id=owner.user_id,
            user_email=owner.user_email,
            ip_address=FAILING_LOGIN_IP,
        )
        return [
            _Event(
                CASES_START,
                key(SESSION_KEY_ID, ["api.model.request", "api.responses.write"], by_owner=True),
            ),
            _Event(32, key(UNRESTRICTED_KEY_ID, [], by_owner=False)),
            *(
                _Event(34 + 2 * n, key(key_id, ["api.model.request"], by_owner=False))
                for n, key_id in enumerate(BURST_KEY_IDS)
            ),
            *(_Event(35 + 3 * n, _login_failed(failing)) for n in range(LOGIN_FAILURES)),
            _Event(57, allowlist_off),
            _Event(59, scopes_changed),
        ]


def _trickle_key_id(minute: int) -> str:
    return f"key_demoAudit{minute:07d}"


def _login_succeeded(org: Organization, at: int) -> object:
    return org.record_audit_event("login.succeeded", effective_at=at)


def _login_failed(actor: SimAuditActor | None) -> Record:
    def record(org: Organization, at: int) -> object:
        return org.record_audit_event(
            "login.failed", effective_at=at, actor=actor if actor is not None else "session"
        )

    return record
