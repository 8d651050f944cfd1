"""The organization the end-to-end stacks serve, and which alerts it was built to fire.

One subject per alert, and a twin just short of each threshold that must stay silent.
Where a subject fires more than one alert (the exporter's own admin key is also expiring
within 14 days; an expired certificate also "expires within 30 days"; a key of a user who
left the organization has lost its project access too; a project whose limit enforces has
spent 100 % of it, so is also near it), every pair is listed: `expected` is the exact set
of (alertname, subject id) that must fire, no more. The organization's own spend alert has
no subject label: its subject id is "".

The usage alerts look at change over time, so part of the organization happens during the
run (`Org.play`): once Prometheus has scraped the keys as built, a dormant key and its twin
are used again and three keys send a burst of tokens. The spike alert compares the last
hour with the 7 days before that hour (`offset 1h`), which no short run has: `history`
gives Prometheus that week of the recording rule openai_api_key:usage_tokens:rate1h for
the three keys, as the rule would have recorded it, and everything after it is live (the
exporter's counters, the rule, the alert as shipped with a 1 s `for:`, Alertmanager).

The audit alerts count events after the exporter's start: `play` records them last
(tests/e2e/audit.py), and they carry the labels `AuditCases.labels` lists.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from exporter.simulator.organization import (
    ADMIN_KEY_VISIBLE_SUFFIX,
    Organization,
    SimAdminKey,
    SimAdminKeyOwner,
    SimApiKey,
    SimCertificate,
    SimProject,
    SimServiceAccount,
    SimUser,
)
from tests.alerts.rules import alerts
from tests.e2e.audit import AuditCases
from tests.e2e.stack import FAKE_ADMIN_KEY, SCRAPE_JOB, Stack, poll

DAY = 86400
HOUR = 3600
RATE_RULE = "openai_api_key:usage_tokens:rate1h"
# Samples of each key's last-used time and token counters Prometheus must hold before
# `Org.play` changes them: the dormant alert reads the jump against min_over_time over 1h,
# the spike alert the counters' growth (a first sample is no growth).
SAMPLES_BEFORE_PLAY = 3
# A burst of tokens sent during the run; the simulator reports half of a usage at once and
# the rest after its lateness (15 min), so the counters grow by half a burst in the run.
BURST_TOKENS = 240_000

# The label that names the subject of each kind of alert, most specific first.
SUBJECT_LABELS = ("api_key_id", "admin_api_key_id", "certificate_id", "collector", "project_id")


def identity(labels: dict[str, str]) -> tuple[str, str]:
    """(alertname, id of what the alert is about)."""
    subject = next((labels[name] for name in SUBJECT_LABELS if name in labels), "")
    return labels["alertname"], subject


@dataclass
class Org:
    """The simulated organization, and what it was built to trigger."""

    org: Organization
    projects: dict[str, SimProject] = field(default_factory=dict)
    keys: dict[str, SimApiKey] = field(default_factory=dict)  # by key name
    project_of: dict[str, SimProject] = field(default_factory=dict)  # by key id
    admin_keys: dict[str, SimAdminKey] = field(default_factory=dict)  # by name
    certificates: dict[str, SimCertificate] = field(default_factory=dict)  # by name
    members: dict[str, SimUser] = field(default_factory=dict)  # by name, still members
    # (alertname, subject id) of every alert that must fire.
    expected: set[tuple[str, str]] = field(default_factory=set)
    # Keys used again during the run (`play`), and keys sending BURST_TOKENS (or the
    # given number of tokens) during the run.
    woken: list[SimApiKey] = field(default_factory=list)
    bursts: dict[str, int] = field(default_factory=dict)  # by key id
    # The 7-day token rate (tokens per second) the recording rule had for each key.
    baselines: dict[str, float] = field(default_factory=dict)  # by key id
    built_at: int = 0
    # Spend this month in US dollars, per project name and in total.
    spend: dict[str, float] = field(default_factory=dict)
    # The audit events recorded during the run (`play`), and the alerts they fire.
    audit: AuditCases | None = None

    def history(self, instance: str) -> str:
        """The recording rule's week before the run, for the keys with a baseline: one
        sample per 5 minutes from 7 days before `built_at` until 61 minutes before it (the
        spike alert's baseline ends an hour before the time it evaluates)."""
        lines = [f"# TYPE {RATE_RULE} gauge"]
        for key_id, rate in self.baselines.items():
            project = self.project_of[key_id]
            labels = (
                f'job="{SCRAPE_JOB}",instance="{instance}",'
                f'project_id="{project.id}",api_key_id="{key_id}"'
            )
            for at in range(self.built_at - 7 * DAY, self.built_at - HOUR - 60, 300):
                lines.append(f"{RATE_RULE}{{{labels}}} {rate} {at}")
        lines.append("# EOF")
        return "\n".join(lines) + "\n"

    async def play(self, stack: Stack, within: float) -> None:
        """Once Prometheus holds SAMPLES_BEFORE_PLAY samples of the last-used time of each
        key to wake and of the token counter of each key to burst, uses them now; then,
        unless the organization's audit logging is off, records the audit cases."""
        woken = "|".join(key.id for key in self.woken)
        bursting = "|".join(self.bursts)
        ready = (
            f"count_over_time(openai_api_key_last_used_timestamp_seconds"
            f'{{api_key_id=~"{woken}"}}[1h]) >= {SAMPLES_BEFORE_PLAY}'
            f" or count_over_time(openai_usage_input_tokens_total"
            f'{{api_key_id=~"{bursting}"}}[1h]) >= {SAMPLES_BEFORE_PLAY}'
        )

        async def seen() -> list[dict[str, Any]] | None:
            result = await stack.query(ready)
            return result if len(result) == len(self.woken) + len(self.bursts) else None

        await poll(seen, "Prometheus to scrape the keys before they are used", within, stack.logs)
        now = int(time.time())
        for key in self.woken:
            self.org.use_key(
                self.project_of[key.id].id,
                key.id,
                at=now,
                source="moderations",  # free: no cost, so the spend stays as built
                requests=2,
                input_tokens=200,
            )
        for key_id, tokens in self.bursts.items():
            self.org.record_usage(
                self.project_of[key_id].id,
                api_key_id=key_id,
                at=now,
                source="moderations",
                requests=100,
                input_tokens=tokens,
            )
        if self.audit is not None and self.org.audit_logging:
            await self.audit.play(self.org, stack, within)

    def expected_labels(self, alertname: str, subject: str, instance: str) -> dict[str, str]:
        """Every label the alert must carry: the joins on the *_info metrics bring the names."""
        labels = {
            "alertname": alertname,
            "severity": alerts()[alertname].labels["severity"],
            "job": SCRAPE_JOB,
            "instance": instance,
        }
        if self.audit is not None and (alertname, subject) in self.audit.labels:
            return labels | self.audit.labels[alertname, subject]
        if subject == "":  # about the organization: the exporter's labels only
            return labels
        projects = {p.id: p for p in self.projects.values()}
        keys = {k.id: k for k in self.keys.values()}
        admin_keys = {k.id: k for k in self.admin_keys.values()}
        certificates = {c.id: c for c in self.certificates.values()}
        if subject in projects:
            return labels | {"project_id": subject, "project_name": projects[subject].name}
        if subject in admin_keys:
            admin = admin_keys[subject]
            return labels | {
                "admin_api_key_id": admin.id,
                "admin_api_key_name": admin.name or "",
                "owner_type": admin.owner.type,
                "owner_id": admin.owner.id,
                "owner_name": admin.owner.name,
                "owner_role": admin.owner.role,
            }
        if subject in certificates:
            certificate = certificates[subject]
            return labels | {
                "certificate_id": certificate.id,
                "certificate_name": certificate.name or "",
                "active": "true" if certificate.active else "false",
            }
        key, project = keys[subject], self.project_of[subject]
        owner_type = "user" if isinstance(key.owner, SimUser) else "service_account"
        return labels | {
            "project_id": project.id,
            "project_name": project.name,
            "api_key_id": key.id,
            "api_key_name": key.name,
            "owner_type": owner_type,
            "owner_id": key.owner.id,
            "owner_name": key.owner.name,
            "owner_project_access": key.owner_project_access,
        }


def month_start(now: int) -> int:
    moment = datetime.fromtimestamp(now, UTC)
    return int(moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0).timestamp())


def build_org(now: int) -> Org:
    built = Org(Organization(seed=3, now=now), built_at=now)
    org = built.org

    def member(name: str, role: str = "reader") -> SimUser:
        """A user of the organization (owners of project keys must be, or they "left")."""
        added = org.add_member(
            name,
            f"{name.lower()}@example.com",
            id=org.new_user_id(),
            role=role,
            added_at=now - 800 * DAY,
            api_key_last_used_at=now - HOUR,
        )
        built.members[name] = SimUser(added.id, name, added.email, "member", added.added_at)
        return built.members[name]

    def service_account(name: str) -> SimServiceAccount:
        return SimServiceAccount(org.new_service_account_id(), name, "member", now)

    alice, bob, carol, dave = (
        member("Alice", "owner"),
        member("Bob"),
        member("Carol"),
        member("Dave"),
    )
    # Eve joined, owns a key, and left: the key stays, its owner is no member any more.
    eve = member("Eve")
    org.remove_member(eve.id)
    del built.members["Eve"]
    etl, ci = service_account("etl"), service_account("ci")

    def project(name: str) -> SimProject:
        built.projects[name] = org.add_project(name, created_at=now - 900 * DAY)
        return built.projects[name]

    def key(
        project: SimProject,
        name: str,
        owner: SimUser | SimServiceAccount,
        created_days: float,
        used_days: float | None,
        *alert_names: str,
        access: str = "active",
    ) -> SimApiKey:
        built.keys[name] = org.add_key(
            project.id,
            name,
            created_at=int(now - created_days * DAY),
            last_used_at=None if used_days is None else int(now - used_days * DAY),
            owner=owner,
            owner_project_access="inactive" if access == "inactive" else "active",
        )
        built.project_of[built.keys[name].id] = project
        built.expected |= {(alert, built.keys[name].id) for alert in alert_names}
        return built.keys[name]

    payments = project("Payments")
    key(payments, "billing-worker", alice, 150, 100, "OpenAIApiKeyUnused")
    key(payments, "spare", bob, 40, None, "OpenAIApiKeyNeverUsed")
    web = key(payments, "web", alice, 20, 1 / 24)
    key(payments, "almost-idle", alice, 100, 89)  # idle 89 days: under 90
    key(payments, "fresh-unused", bob, 29, None)  # never used, 29 days: under 30
    # The owner left the organization (and with it the project): both owner alerts.
    # Its key still makes requests (30 minutes ago, within the exporter's lookback).
    eve_notebook = key(
        payments,
        "eve-notebook",
        eve,
        60,
        2,
        "OpenAIApiKeyOwnerInactive",
        "OpenAIApiKeyOwnerLeftOrganization",
        "OpenAIApiKeyOfDepartedOwnerUsed",
        access="inactive",
    )
    # Last used 40 days ago, used again during the run; its twin after 29 days (under 30).
    built.woken.append(key(payments, "dormant-batch", bob, 120, 40, "OpenAIDormantApiKeyUsed"))
    built.woken.append(key(payments, "monthly-report", bob, 100, 29))

    # A name with quotes, an ampersand and an emoji, carried intact to Alertmanager.
    research = project('Research "R&D" \U0001f680')
    key(research, "notebook", carol, 200, 1, "OpenAIApiKeyRotationDue")
    key(
        research,
        "pipeline",
        etl,
        400,
        2 / 24,
        "OpenAIApiKeyRotationDue",
        "OpenAIApiKeyRotationOverdue",
    )
    # Dave lost access to the project but is still a member: not "left the organization".
    # The key makes no request: a departed owner's idle key is no "departed owner used".
    key(research, "old-laptop", dave, 10, 5, "OpenAIApiKeyOwnerInactive", access="inactive")
    notebook = built.keys["notebook"]
    key(research, "almost-due", carol, 179, 1)  # 179 days old: under 180
    # Three keys send the same burst during the run (half of BURST_TOKENS shows, about
    # 2,000 tokens per minute over the hour) against their week before: 2 tokens/s, a
    # spike; 40 tokens/s, busy but not 5 times more; a quiet key's 0.05 tokens/s with a
    # tenth of the burst, 5 times more but under the floor of 1,000 tokens per minute.
    for name, baseline, tokens, *spike in (
        ("spiky-agent", 2.0, BURST_TOKENS, "OpenAIApiKeyUsageSpike"),
        ("busy-service", 40.0, BURST_TOKENS),
        ("quiet-script", 0.05, BURST_TOKENS // 10),
    ):
        bursting = key(research, name, etl, 60, 1 / 24, *spike)
        built.baselines[bursting.id] = baseline
        built.bursts[bursting.id] = int(tokens)
        # Some usage two hours ago: the token series exist before the burst.
        org.record_usage(
            research.id,
            api_key_id=bursting.id,
            at=now - 2 * HOUR,
            source="moderations",
            requests=10,
            input_tokens=1_000,
        )

    crowded = project("Crowded")
    for index in range(51):  # one over the threshold of 50
        key(crowded, f"ci-{index:02d}", ci, 10, 1 / 24)
    built.expected.add(("OpenAIProjectTooManyKeys", crowded.id))

    # Requests of the departed owner's key, and of a current owner's (no alert), 30
    # minutes ago: past the simulator's lateness (15 min), so reported in full.
    for used in (eve_notebook, web):
        org.use_key(
            payments.id,
            used.id,
            at=now - HOUR // 2,
            source="moderations",
            requests=3,
            input_tokens=300,
        )

    _add_spend(
        built, now, {payments.id: web, research.id: notebook, crowded.id: built.keys["ci-00"]}
    )
    _add_admin_keys(built, now, alice)
    _add_certificates(built, now)
    _add_invites(built, now)
    built.audit = AuditCases.plan(
        org, session=payments.id, automation=research.id, scoped=crowded.id
    )
    built.expected |= set(built.audit.labels)
    return built


def _add_spend(built: Org, now: int, spender: dict[str, SimApiKey]) -> None:
    """Month-to-date spend against the limits: Payments at 85 % of its limit (near it),
    Research at 70 % (not), Crowded at 100 % with its limit enforcing (near it too, which
    Alertmanager inhibits), the organization at 82 % of its own (near it; a project's
    enforcing limit does not mute it)."""
    org = built.org
    # Costs settle at once here (the API takes a day): the spend is what was spent, and
    # does not move during the run. Spent a minute ago, within this month (UTC).
    org.usage.cost_lateness = 0
    at = max(month_start(now), now - 60)
    by_name = {p.id: name for name, p in built.projects.items()}
    # (project, limit in dollars, spent in dollars, enforcing, alert)
    for project_id, limit, spent, enforcing, alert_names in (
        (built.projects["Payments"].id, 100, 85, False, ("OpenAIProjectSpendNearLimit",)),
        (built.projects['Research "R&D" \U0001f680'].id, 100, 70, False, ()),
        (
            built.projects["Crowded"].id,
            50,
            50,
            True,
            ("OpenAIProjectSpendNearLimit", "OpenAISpendLimitEnforcing"),
        ),
    ):
        org.set_project_spend_limit(project_id, limit * 100, enforcing=enforcing)
        org.add_project_spend_alert(project_id, limit * 80)  # at 80 %, in cents
        # gpt-4o output tokens cost $10 per million.
        org.record_usage(
            project_id,
            api_key_id=spender[project_id].id,
            at=at,
            model="gpt-4o",
            requests=1_000,
            input_tokens=0,
            output_tokens=spent * 100_000,
        )
        built.spend[by_name[project_id]] = spent
        built.expected |= {(alert, project_id) for alert in alert_names}
    built.spend[""] = sum(built.spend.values())
    org.set_spend_limit(250 * 100)
    org.add_spend_alert(200 * 100)
    built.expected.add(("OpenAIOrganizationSpendNearLimit", ""))


def _add_admin_keys(built: Org, now: int, owner: SimUser) -> None:
    org = built.org
    as_owner = SimAdminKeyOwner(id=owner.id, name=owner.name, created_at=owner.created_at)
    robot = SimAdminKeyOwner(
        id=org.new_service_account_id(),
        name="admin-automation",
        created_at=now - 500 * DAY,
        role="member",
        type="service_account",
    )
    own_tail = FAKE_ADMIN_KEY[-ADMIN_KEY_VISIBLE_SUFFIX:]

    def admin_key(
        name: str,
        *alert_names: str,
        created_days: float,
        expires_days: float | None,
        used_days: float | None,
        value: str | None = None,
        key_owner: SimAdminKeyOwner = as_owner,
    ) -> None:
        if value is None:  # every other key's redacted value differs from the exporter's
            value = f"sk-admin-e2e-{len(built.admin_keys):03d}"
            assert value[-ADMIN_KEY_VISIBLE_SUFFIX:] != own_tail
        built.admin_keys[name] = org.add_admin_key(
            name,
            value=value,
            created_at=int(now - created_days * DAY),
            expires_at=None if expires_days is None else int(now + expires_days * DAY),
            last_used_at=None if used_days is None else int(now - used_days * DAY),
            owner=key_owner,
        )
        built.expected |= {(alert, built.admin_keys[name].id) for alert in alert_names}

    # The exporter's own key, expiring within 7 days: the critical alert, and also the
    # warning for any admin key within 14 days (which Alertmanager inhibits).
    admin_key(
        "openai-key-exporter",
        "OpenAIExporterAdminKeyExpiring",
        "OpenAIAdminApiKeyExpiringSoon",
        value=FAKE_ADMIN_KEY,
        created_days=30,
        expires_days=5,
        used_days=1 / DAY,
    )
    # Its twin: another key just as close to expiry is only "expiring soon", never the
    # exporter's key.
    admin_key(
        "deploy",
        "OpenAIAdminApiKeyExpiringSoon",
        created_days=60,
        expires_days=5,
        used_days=1 / 24,
    )
    admin_key(
        "terraform",
        "OpenAIAdminApiKeyNoExpiry",
        created_days=60,
        expires_days=None,
        used_days=1 / 24,
    )
    admin_key(
        "ci-admin",
        "OpenAIAdminApiKeyExpiringSoon",
        created_days=60,
        expires_days=10,
        used_days=1 / 24,
    )
    admin_key("release", created_days=60, expires_days=20, used_days=1 / 24)  # 20 days: over 14
    admin_key(
        "quarterly-audit",
        "OpenAIAdminApiKeyUnused",
        created_days=100,
        expires_days=200,
        used_days=45,
    )
    admin_key("monthly-report", created_days=100, expires_days=200, used_days=20)  # idle 20 < 30
    admin_key(
        "new-admin", "OpenAIAdminApiKeyUnused", created_days=10, expires_days=80, used_days=None
    )
    admin_key("brand-new", created_days=3, expires_days=87, used_days=None)  # never used, 3 < 7
    admin_key(
        "legacy-automation",
        "OpenAIAdminApiKeyRotationDue",
        created_days=200,
        expires_days=165,
        used_days=6 / 24,
        key_owner=robot,
    )
    admin_key("almost-legacy", created_days=170, expires_days=100, used_days=6 / 24)  # 170 < 180


def _add_certificates(built: Org, now: int) -> None:
    def certificate(name: str, *alert_names: str, expires_days: float, active: bool = True) -> None:
        built.certificates[name] = built.org.add_certificate(
            name,
            created_at=now - 300 * DAY,
            valid_at=now - 300 * DAY,
            expires_at=int(now + expires_days * DAY),
            active=active,
        )
        built.expected |= {(alert, built.certificates[name].id) for alert in alert_names}

    certificate("gateway-mtls", "OpenAICertificateExpiringSoon", expires_days=20)
    # Expired is also within 30 days: Alertmanager inhibits the warning for it.
    certificate(
        "legacy-mtls", "OpenAICertificateExpired", "OpenAICertificateExpiringSoon", expires_days=-3
    )
    certificate("gateway-mtls-next", expires_days=400)
    # Inactive certificates alert on nothing, expired or about to be.
    certificate("retired-mtls", expires_days=-30, active=False)
    certificate("standby-mtls", expires_days=10, active=False)


def _add_invites(built: Org, now: int) -> None:
    org = built.org
    org.add_invite("new.reader@example.com", created_at=now - DAY)  # pending, 7-day lifetime
    org.add_invite(
        "new.owner@example.com", role="owner", created_at=now - 6 * DAY, expires_at=now + DAY
    )
    org.add_invite("ignored@example.com", created_at=now - 20 * DAY, expires_at=now - 13 * DAY)
    org.add_invite(
        "carol@example.com",
        created_at=now - 801 * DAY,
        expires_at=now - 794 * DAY,
        accepted_at=now - 800 * DAY,
    )
