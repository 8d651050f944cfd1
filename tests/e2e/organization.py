"""The organization the end-to-end stacks serve, and which alerts it was built to fire.

One subject per alert, and a twin just short of each threshold that must stay silent.
Where a subject fires more than one alert (the exporter's own admin key is also expiring
within 14 days; an expired certificate also "expires within 30 days"; a key of a user who
left the organization has lost its project access too), every pair is listed: `expected`
is the exact set of (alertname, subject id) that must fire, no more.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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
from tests.e2e.stack import FAKE_ADMIN_KEY, SCRAPE_JOB

DAY = 86400
HOUR = 3600

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

    def expected_labels(self, alertname: str, subject: str, instance: str) -> dict[str, str]:
        """Every label the alert must carry: the joins on the *_info metrics bring the names."""
        labels = {
            "alertname": alertname,
            "severity": alerts()[alertname].labels["severity"],
            "job": SCRAPE_JOB,
            "instance": instance,
        }
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


def build_org(now: int) -> Org:
    built = Org(Organization(seed=3, now=now))
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
    ) -> None:
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

    payments = project("Payments")
    key(payments, "billing-worker", alice, 150, 100, "OpenAIApiKeyUnused")
    key(payments, "spare", bob, 40, None, "OpenAIApiKeyNeverUsed")
    key(payments, "web", alice, 20, 1 / 24)
    key(payments, "almost-idle", alice, 100, 89)  # idle 89 days: under 90
    key(payments, "fresh-unused", bob, 29, None)  # never used, 29 days: under 30
    # The owner left the organization (and with it the project): both owner alerts.
    key(
        payments,
        "eve-notebook",
        eve,
        60,
        2,
        "OpenAIApiKeyOwnerInactive",
        "OpenAIApiKeyOwnerLeftOrganization",
        access="inactive",
    )

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
    key(research, "old-laptop", dave, 10, 5, "OpenAIApiKeyOwnerInactive", access="inactive")
    key(research, "almost-due", carol, 179, 1)  # 179 days old: under 180

    crowded = project("Crowded")
    for index in range(51):  # one over the threshold of 50
        key(crowded, f"ci-{index:02d}", ci, 10, 1 / 24)
    built.expected.add(("OpenAIProjectTooManyKeys", crowded.id))

    _add_admin_keys(built, now, alice)
    _add_certificates(built, now)
    _add_invites(built, now)
    return built


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
