"""The audit events the end-to-end organization records during the run, one case per alert.

The exporter counts only events dated from its first audit poll on, so no audit alert can
be built into the organization: `AuditCases.play` records the events once Prometheus has
seen that poll succeed, with `effective_at` now (the organization's own clock stays at its
build time). The keys the events name are not added to the key listings: the inventory
that the other tests count stays as built (and the audit log's key "tracking id" is not
known to match a listed key's id anyway).

OpenAIApiKeysCreatedBurst and OpenAILoginFailures count the whole organization (`sum by
(job, instance)`), so their twin short of the threshold cannot sit beside the subject in
one organization. The twin is the same organization a moment earlier: exactly 10 keys
created and 5 logins failed, which Prometheus records without firing (`held_at`), then one
more of each. The other cases have their twins side by side: keys created by automation
(a service account's key, a user's key) beside the one created in a browser session, keys
created with scopes beside the one created without, an allowlist switched on beside the
one switched off, logins that worked beside those that failed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from exporter.simulator.audit import AuditActorKind
from exporter.simulator.organization import Organization
from tests.e2e.stack import Stack, poll

BURST_THRESHOLD = 10  # OpenAIApiKeysCreatedBurst: more than 10 keys within the hour
LOGIN_FAILURE_THRESHOLD = 5  # OpenAILoginFailures: more than 5 within 15 minutes
AUDIT_THRESHOLD_ALERTS = ("OpenAIApiKeysCreatedBurst", "OpenAILoginFailures")
READ = ["api.model.read"]
REQUEST = ["api.model.read", "api.model.request"]


@dataclass
class AuditCases:
    """Where the audit events go, and the labels of each audit alert they fire."""

    session_project: str  # a key created in a browser session
    automation_project: str  # keys created by service accounts' and users' keys
    scoped_project: str  # the unrestricted key among restricted ones
    unrestricted_key: str
    updated_key: str  # its scopes change during the run
    # (alertname, subject id) -> the labels the alert carries beside alertname, severity,
    # job and instance.
    labels: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)
    # Prometheus's time of an evaluation that saw exactly the thresholds' values.
    held_at: float = 0.0

    @classmethod
    def plan(cls, org: Organization, session: str, automation: str, scoped: str) -> AuditCases:
        cases = cls(session, automation, scoped, org.new_key_id(), org.new_key_id())
        session_label = {"actor_type": "session"}
        cases.labels = {
            ("OpenAIApiKeysCreatedBurst", ""): {},
            ("OpenAILoginFailures", ""): {},
            ("OpenAIIpAllowlistDeactivated", ""): session_label,
            ("OpenAIApiKeyCreatedFromSession", session): {"project_id": session} | session_label,
            ("OpenAIApiKeyScopesChanged", automation): {"project_id": automation} | session_label,
            ("OpenAIApiKeyUnrestricted", cases.unrestricted_key): {
                "project_id": scoped,
                "api_key_id": cases.unrestricted_key,
            },
        }
        return cases

    async def play(self, org: Organization, stack: Stack, within: float) -> None:
        async def counting() -> bool | None:
            ok = await stack.query('openai_exporter_collector_success{collector="audit_logs"} == 1')
            return bool(ok) or None

        await poll(counting, "the first audit poll (counting starts)", within, stack.logs)
        self._at_thresholds(org, int(time.time()))
        held = (
            f'sum(openai_audit_events:increase1h{{event_type="api_key.created"}}) == '
            f"{BURST_THRESHOLD} and on () "
            f'sum(openai_audit_events:increase15m{{event_type="login.failed"}}) == '
            f"{LOGIN_FAILURE_THRESHOLD}"
        )

        async def recorded() -> float | None:
            result = await stack.query(held)
            return float(result[0]["value"][0]) if result else None

        self.held_at = await poll(recorded, "the thresholds' values recorded", within, stack.logs)
        self._over_thresholds(org, int(time.time()))

    def _at_thresholds(self, org: Organization, now: int) -> None:
        def created(project: str, actor: AuditActorKind, scopes: list[str], key: str = "") -> None:
            org.audit_key_created(
                project, key or org.new_key_id(), scopes, actor=actor, effective_at=now
            )

        created(self.session_project, "session", REQUEST)
        created(self.automation_project, "user_api_key", READ)
        created(self.automation_project, "service_account_api_key", REQUEST, self.updated_key)
        for _ in range(3):
            created(self.automation_project, "service_account_api_key", READ)
        created(self.scoped_project, "service_account_api_key", [], self.unrestricted_key)
        for _ in range(3):
            created(self.scoped_project, "service_account_api_key", REQUEST)
        org.audit_key_updated(self.automation_project, self.updated_key, READ, effective_at=now)
        org.record_audit_event("ip_allowlist.config.activated", effective_at=now)
        org.record_audit_event("ip_allowlist.config.deactivated", effective_at=now)
        for _ in range(LOGIN_FAILURE_THRESHOLD):
            org.record_audit_event("login.failed", effective_at=now)
        for _ in range(2):
            org.record_audit_event("login.succeeded", effective_at=now)

    def _over_thresholds(self, org: Organization, now: int) -> None:
        org.audit_key_created(
            self.automation_project,
            org.new_key_id(),
            READ,
            actor="service_account_api_key",
            effective_at=now,
        )
        org.record_audit_event("login.failed", effective_at=now)
