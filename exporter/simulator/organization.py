"""A simulated OpenAI organization: projects, their API keys and service accounts,
the organization's members, admin API keys, invites and certificates, its usage
and costs (`usage`), spend limits and alerts, the projects' rate limits, and its
audit log.

Plain data plus an `Organization` that keeps every listing in order with O(1)
cursor lookups, so listing a 100,000-key organization page by page stays
linear. `build_organization` grows a deterministic one from a seed.
"""

from __future__ import annotations

import binascii
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, TypeVar

from exporter.simulator import names
from exporter.simulator.audit import (
    KEY_SCOPES,
    AuditActorKind,
    AuditLog,
    AuditQuery,
    SimAuditActor,
    SimAuditEvent,
    default_details,
)
from exporter.simulator.billing import (
    DEFAULT_RATE_LIMITS,
    SimRateLimit,
    SimSpendAlert,
    SimSpendLimit,
)
from exporter.simulator.ordered import OrderedCollection, Page
from exporter.simulator.usage import (
    ACTIVE_WINDOW,
    COMMITMENT_LINE_ITEM,
    DEFAULT_COST_LATENESS,
    DEFAULT_LATENESS,
    HOUR,
    MODELS,
    STORAGE_LINE_ITEM,
    USAGE_SOURCES,
    Dim,
    UsageEvent,
    UsageModel,
    UsagePlan,
    UsageSource,
    plan_series,
    series_hash,
)

OwnerProjectAccess = Literal["active", "inactive"]
AccessFilter = Literal["active", "inactive", "any"]
ProjectStatus = Literal["active", "archived"]
AdminKeyOwnerType = Literal["user", "service_account"]
InviteStatus = Literal["accepted", "expired", "pending"]
InviteRole = Literal["owner", "reader"]
ProjectRole = Literal["owner", "member"]
SortOrder = Literal["asc", "desc"]

DAY = 86_400
# Maps base64's "+" and "/" to letters, leaving ids alphanumeric.
_ALPHANUMERIC_BASE64 = bytes.maketrans(b"+/", b"xZ")
# Keys are spread over this many days before `now`, so every age and idle
# threshold a dashboard or alert uses (30, 90, 180, 365 days) is populated.
MAX_KEY_AGE_DAYS = 800
# What the API shows of an admin key: this prefix, then the key's last characters.
ADMIN_KEY_REDACTED_PREFIX = "sk-admin..."
ADMIN_KEY_VISIBLE_SUFFIX = 3
# How long an invite stays pending when no expiry is given (the product's is undocumented).
INVITE_LIFETIME = 7 * DAY


def redact_admin_key(value: str) -> str:
    """The `redacted_value` the API shows for an admin key: `sk-admin...` + its last 3."""
    return ADMIN_KEY_REDACTED_PREFIX + value[-ADMIN_KEY_VISIBLE_SUFFIX:]


@dataclass(frozen=True, slots=True)
class SimUser:
    id: str
    name: str
    email: str
    role: str  # the user's role in the key's project: "owner" or "member"
    created_at: int


@dataclass(frozen=True, slots=True)
class SimServiceAccount:
    id: str
    name: str
    role: str
    created_at: int


@dataclass(frozen=True, slots=True)
class SimApiKey:
    id: str
    name: str
    redacted_value: str
    created_at: int
    last_used_at: int | None
    owner: SimUser | SimServiceAccount
    owner_project_access: OwnerProjectAccess


@dataclass(frozen=True, slots=True)
class SimAdminKeyOwner:
    """The flat owner of an admin key: a user (the schema) or a service account (its example)."""

    id: str
    name: str
    created_at: int
    role: str = "owner"
    type: AdminKeyOwnerType = "user"


@dataclass(frozen=True, slots=True)
class SimAdminKey:
    id: str
    name: str | None
    value: str = field(repr=False)  # the full secret: kept to redact it, never served
    created_at: int
    expires_at: int | None  # None: never expires
    last_used_at: int | None  # None: never used
    owner: SimAdminKeyOwner

    @property
    def redacted_value(self) -> str:
        return redact_admin_key(self.value)


@dataclass(frozen=True, slots=True)
class SimMember:
    """A user of the organization, as `GET /organization/users` lists them."""

    id: str
    name: str
    email: str
    role: str  # organization role: "owner", "reader", or another the product has ("member")
    added_at: int
    created_at: int
    api_key_last_used_at: int | None = None


@dataclass(frozen=True, slots=True)
class SimInviteProject:
    id: str
    role: ProjectRole


@dataclass(frozen=True, slots=True)
class SimInvite:
    id: str
    email: str
    role: InviteRole
    status: InviteStatus
    created_at: int
    expires_at: int | None
    accepted_at: int | None
    projects: tuple[SimInviteProject, ...] = ()


@dataclass(frozen=True, slots=True)
class SimCertificate:
    id: str
    name: str | None
    created_at: int
    active: bool
    valid_at: int
    expires_at: int


@dataclass(frozen=True, slots=True)
class SimProject:
    id: str
    name: str
    created_at: int
    status: ProjectStatus
    archived_at: int | None


OrgT = TypeVar("OrgT", bound="Organization")


class UnknownProjectError(KeyError):
    """No project with that id (never created, or deleted)."""


def _draw_id(rng: random.Random, prefix: str, length: int) -> str:
    """`prefix` + `length` alphanumerics (a multiple of 4) from `rng`.

    Base64 of random bytes is the fastest seeded alphanumeric text (the two
    non-alphanumeric digits are swapped).
    """
    raw = binascii.b2a_base64(rng.randbytes(length * 3 // 4), newline=False)
    return prefix + raw.translate(_ALPHANUMERIC_BASE64).decode("ascii")


class Organization:
    """Ordered projects, each with its ordered API keys and service accounts, plus the
    organization's members, admin keys, invites and certificates.

    Ids that are not given are drawn from a generator seeded by `seed`, so the
    same calls give the same ids. Projects, keys, users and service accounts
    draw from one generator, admin keys, invites and certificates from
    another, so adding the latter never shifts the former. `now` is the
    default creation time; None means the wall clock at each call.
    """

    def __init__(self, *, seed: int = 0, now: int | None = None) -> None:
        self._ids = random.Random(seed)
        self._more_ids = random.Random(f"organization-extras-{seed}")
        self._now = now
        self._projects: OrderedCollection[SimProject] = OrderedCollection()
        self._keys: dict[str, OrderedCollection[SimApiKey]] = {}
        self._service_accounts: dict[str, OrderedCollection[SimServiceAccount]] = {}
        self._key_count = 0
        self._default_owner: SimUser | None = None
        self._admin_keys: OrderedCollection[SimAdminKey] = OrderedCollection()
        self._members: OrderedCollection[SimMember] = OrderedCollection()
        self._invites: OrderedCollection[SimInvite] = OrderedCollection()
        self._certificates: OrderedCollection[SimCertificate] = OrderedCollection()
        # Usage and costs, and the billing controls (spend limits, alerts, rate limits).
        self.usage = UsageModel()
        self._billing_ids = random.Random(f"organization-billing-{seed}")
        self._spend_limit: SimSpendLimit | None = None
        self._project_spend_limits: dict[str, SimSpendLimit] = {}
        self._spend_alerts: OrderedCollection[SimSpendAlert] = OrderedCollection()
        self._project_spend_alerts: dict[str, OrderedCollection[SimSpendAlert]] = {}
        self._rate_limits: dict[str, OrderedCollection[SimRateLimit]] = {}
        # The audit log draws its own ids and actors, so recording events never shifts
        # the ids of anything else.
        self._audit = AuditLog()
        self._audit_ids = random.Random(f"organization-audit-{seed}")
        # False: the listing answers as an organization that never enabled audit logging.
        self.audit_logging = True

    # -- ids -------------------------------------------------------------

    def new_id(self, prefix: str, length: int) -> str:
        """A fresh id in the style of the real API (`proj_`, `key_`, `user-`, `svc_acct_`).

        `length` is a multiple of 4.
        """
        return _draw_id(self._ids, prefix, length)

    def new_project_id(self) -> str:
        return self.new_id("proj_", 24)

    def new_key_id(self) -> str:
        return self.new_id("key_", 16)

    def new_user_id(self) -> str:
        return self.new_id("user-", 24)

    def new_service_account_id(self) -> str:
        return self.new_id("svc_acct_", 24)

    def new_admin_key_id(self) -> str:
        return _draw_id(self._more_ids, "key_", 16)

    def new_admin_key_value(self) -> str:
        """A fresh full admin key secret, `sk-admin-` + 64 alphanumerics."""
        return _draw_id(self._more_ids, "sk-admin-", 64)

    def new_invite_id(self) -> str:
        return _draw_id(self._more_ids, "invite-", 24)

    def new_certificate_id(self) -> str:
        return _draw_id(self._more_ids, "cert_", 24)

    def new_spend_alert_id(self) -> str:
        return _draw_id(self._billing_ids, "alert_", 24)

    def _clock(self) -> int:
        return self._now if self._now is not None else int(time.time())

    # -- mutations -------------------------------------------------------

    def add_project(
        self,
        name: str,
        *,
        id: str | None = None,
        created_at: int | None = None,
        archived: bool = False,
    ) -> SimProject:
        created = self._clock() if created_at is None else created_at
        project = SimProject(
            id=id if id is not None else self.new_project_id(),
            name=name,
            created_at=created,
            status="archived" if archived else "active",
            archived_at=max(created, self._clock()) if archived else None,
        )
        self._projects.add(project.id, project)
        self._keys[project.id] = OrderedCollection()
        self._service_accounts[project.id] = OrderedCollection()
        self._project_spend_alerts[project.id] = OrderedCollection()
        return project

    def archive_project(self, project_id: str, *, archived_at: int | None = None) -> SimProject:
        project = self.project(project_id)
        archived = replace(
            project,
            status="archived",
            archived_at=self._clock() if archived_at is None else archived_at,
        )
        self._projects.replace(project_id, archived)
        return archived

    def delete_project(self, project_id: str) -> None:
        """Remove a project, its keys and service accounts (the real API only archives)."""
        if project_id not in self._projects:
            raise UnknownProjectError(project_id)
        self._projects.remove(project_id)
        self._key_count -= len(self._keys.pop(project_id))
        del self._service_accounts[project_id]
        del self._project_spend_alerts[project_id]
        self._project_spend_limits.pop(project_id, None)
        self._rate_limits.pop(project_id, None)

    def add_key(
        self,
        project_id: str,
        name: str,
        *,
        id: str | None = None,
        created_at: int,
        last_used_at: int | None = None,
        owner: SimUser | SimServiceAccount | None = None,
        owner_project_access: OwnerProjectAccess = "active",
        redacted_value: str | None = None,
    ) -> SimApiKey:
        keys = self._project_keys(project_id)
        key_owner = owner if owner is not None else self.default_owner()
        key = SimApiKey(
            id=id if id is not None else self.new_key_id(),
            name=name,
            redacted_value=(
                redacted_value if redacted_value is not None else self._redacted_value(key_owner)
            ),
            created_at=created_at,
            last_used_at=last_used_at,
            owner=key_owner,
            owner_project_access=owner_project_access,
        )
        keys.add(key.id, key)
        self._key_count += 1
        if isinstance(key_owner, SimServiceAccount):
            # A key's service account is one of its project's service accounts.
            accounts = self._service_accounts[project_id]
            if key_owner.id not in accounts:
                accounts.add(key_owner.id, key_owner)
        return key

    def delete_key(self, project_id: str, key_id: str) -> None:
        self._project_keys(project_id).remove(key_id)
        self._key_count -= 1

    def key(self, project_id: str, key_id: str) -> SimApiKey:
        found = self._project_keys(project_id).get(key_id)
        if found is None:
            raise KeyError(key_id)
        return found

    def set_key_last_used(
        self, project_id: str, key_id: str, last_used_at: int | None
    ) -> SimApiKey:
        """Replace the (frozen) key with one last used at `last_used_at`."""
        updated = replace(self.key(project_id, key_id), last_used_at=last_used_at)
        self._project_keys(project_id).replace(key_id, updated)
        return updated

    # -- usage -------------------------------------------------------------

    def use_key(
        self,
        project_id: str,
        key_id: str,
        *,
        at: int | None = None,
        source: UsageSource = "completions",
        model: str | None = None,
        requests: int = 1,
        extra: dict[str, Dim] | None = None,
        **metrics: int,
    ) -> SimApiKey:
        """Usage made with a key at `at` (default: the organization's clock): recorded like
        `record_usage`, and the key's `last_used_at` (and its owner's
        `api_key_last_used_at`) moves to `at` when later. Returns the updated key."""
        when = self._clock() if at is None else at
        key = self.key(project_id, key_id)
        owner = key.owner
        self.record_usage(
            project_id,
            api_key_id=key_id,
            user_id=owner.id if isinstance(owner, SimUser) else None,
            at=when,
            source=source,
            model=model,
            requests=requests,
            extra=extra,
            **metrics,
        )
        if key.last_used_at is None or key.last_used_at < when:
            key = self.set_key_last_used(project_id, key_id, when)
            member = self._members.get(owner.id)
            if member is not None and (
                member.api_key_last_used_at is None or member.api_key_last_used_at < when
            ):
                self._members.replace(member.id, replace(member, api_key_last_used_at=when))
        return key

    def record_usage(
        self,
        project_id: str,
        *,
        api_key_id: str | None = None,
        user_id: str | None = None,
        at: int | None = None,
        source: UsageSource = "completions",
        model: str | None = None,
        requests: int = 1,
        extra: dict[str, Dim] | None = None,
        **metrics: int,
    ) -> UsageEvent:
        """Usage at second `at` (default: the clock), e.g. without a key (`api_key_id`
        None: the playground). `metrics` are the source's result fields
        (`input_tokens=...`, `images=...`); `extra` its other grouping fields
        (`batch`, `service_tier`, `size`, `source`). Subject to lateness like all usage."""
        return self.usage.add_event(
            source,
            at=self._clock() if at is None else at,
            project_id=project_id,
            api_key_id=api_key_id,
            user_id=user_id,
            model=model if model is not None else MODELS[source][0],
            requests=requests,
            metrics=metrics,
            extra=extra,
        )

    # -- audit log -----------------------------------------------------------

    def record_audit_event(
        self,
        event_type: str,
        *,
        effective_at: int | None = None,
        project_id: str | None = None,
        actor: SimAuditActor | AuditActorKind | None = "session",
        details: Mapping[str, Any] | None = None,
    ) -> SimAuditEvent:
        """An event of any type (unknown ones too) at `effective_at` (default: the clock),
        placed in the log where its time puts it, however late it is recorded. An actor
        kind given as a string becomes a plausible actor of that kind; `details` default
        to a plausible object for the type."""
        project = self._projects.get(project_id) if project_id is not None else None
        event = SimAuditEvent(
            id=_draw_id(self._audit_ids, "audit_log-", 24),
            type=event_type,
            effective_at=self._clock() if effective_at is None else effective_at,
            project_id=project_id,
            project_name=project.name if project is not None else None,
            actor=self._audit_actor(actor, project_id) if isinstance(actor, str) else actor,
            details=(
                default_details(event_type, lambda prefix: _draw_id(self._audit_ids, prefix, 24))
                if details is None
                else details
            ),
        )
        self._audit.add(event)
        return event

    def audit_key_created(
        self,
        project_id: str,
        key_id: str,
        scopes: Sequence[str],
        *,
        actor: SimAuditActor | AuditActorKind = "session",
        effective_at: int | None = None,
    ) -> SimAuditEvent:
        """`api_key.created` with the scopes the key was created with (none: unrestricted)."""
        return self.record_audit_event(
            "api_key.created",
            effective_at=effective_at,
            project_id=project_id,
            actor=actor,
            details={"id": key_id, "data": {"scopes": list(scopes)}},
        )

    def audit_key_updated(
        self,
        project_id: str,
        key_id: str,
        scopes: Sequence[str],
        *,
        actor: SimAuditActor | AuditActorKind = "session",
        effective_at: int | None = None,
    ) -> SimAuditEvent:
        return self.record_audit_event(
            "api_key.updated",
            effective_at=effective_at,
            project_id=project_id,
            actor=actor,
            details={"id": key_id, "changes_requested": {"scopes": list(scopes)}},
        )

    def audit_key_deleted(
        self,
        project_id: str,
        key_id: str,
        *,
        actor: SimAuditActor | AuditActorKind = "session",
        effective_at: int | None = None,
    ) -> SimAuditEvent:
        return self.record_audit_event(
            "api_key.deleted",
            effective_at=effective_at,
            project_id=project_id,
            actor=actor,
            details={"id": key_id},
        )

    def audit_events(self) -> list[SimAuditEvent]:
        """Every event, newest first, as the listing shows them."""
        return list(self._audit)

    def page_audit_events(
        self,
        query: AuditQuery,
        *,
        limit: int,
        after: str | None = None,
        before: str | None = None,
    ) -> Page[SimAuditEvent]:
        """One page of the audit log; raises UnknownCursorError for an unknown cursor."""
        return self._audit.page(query=query, limit=limit, after=after, before=before)

    def _audit_actor(self, kind: AuditActorKind, project_id: str | None) -> SimAuditActor:
        """A member of the organization acting in a browser session or with one of their
        keys, or a service account (of the project when it has one) with its key."""
        rng = self._audit_ids
        if kind == "service_account_api_key":
            accounts = self._service_accounts.get(project_id or "")
            account = None
            if accounts:
                account = accounts.item_at(rng.randrange(len(accounts)))
            return SimAuditActor(
                kind=kind,
                api_key_id=_draw_id(rng, "key_", 16),
                service_account_id=(
                    account.id if account is not None else _draw_id(rng, "svc_acct_", 24)
                ),
            )
        user_id, email = self._audit_user(rng)
        if kind == "user_api_key":
            return SimAuditActor(
                kind=kind, user_id=user_id, user_email=email, api_key_id=_draw_id(rng, "key_", 16)
            )
        # Documentation addresses (TEST-NET-3): plausible, and nobody's.
        ip = f"203.0.113.{rng.randrange(1, 255)}"
        return SimAuditActor(kind=kind, user_id=user_id, user_email=email, ip_address=ip)

    def _audit_user(self, rng: random.Random) -> tuple[str, str]:
        if len(self._members):
            member = self._members.item_at(rng.randrange(len(self._members)))
            return member.id, member.email
        if self._default_owner is not None:
            return self._default_owner.id, self._default_owner.email
        # Not default_owner(): creating it would draw from the main generator.
        return _draw_id(rng, "user-", 24), "audit.actor@example.com"

    # -- spend limits, spend alerts, rate limits -------------------------------

    def set_spend_limit(self, threshold_cents: int, *, enforcing: bool = False) -> SimSpendLimit:
        self._spend_limit = SimSpendLimit(threshold_cents, enforcing)
        return self._spend_limit

    def clear_spend_limit(self) -> None:
        self._spend_limit = None

    def spend_limit(self) -> SimSpendLimit | None:
        return self._spend_limit

    def set_project_spend_limit(
        self, project_id: str, threshold_cents: int, *, enforcing: bool = False
    ) -> SimSpendLimit:
        self.project(project_id)
        limit = SimSpendLimit(threshold_cents, enforcing)
        self._project_spend_limits[project_id] = limit
        return limit

    def clear_project_spend_limit(self, project_id: str) -> None:
        self.project(project_id)
        self._project_spend_limits.pop(project_id, None)

    def project_spend_limit(self, project_id: str) -> SimSpendLimit | None:
        self.project(project_id)
        return self._project_spend_limits.get(project_id)

    def add_spend_alert(
        self,
        threshold_cents: int,
        *,
        id: str | None = None,
        recipients: tuple[str, ...] = ("finance@example.com",),
        subject_prefix: str | None = None,
    ) -> SimSpendAlert:
        alert = SimSpendAlert(
            id if id is not None else self.new_spend_alert_id(),
            threshold_cents,
            recipients,
            subject_prefix,
        )
        self._spend_alerts.add(alert.id, alert)
        return alert

    def remove_spend_alert(self, alert_id: str) -> None:
        self._spend_alerts.remove(alert_id)

    def spend_alerts(self) -> list[SimSpendAlert]:
        return list(self._spend_alerts)

    def page_spend_alerts(
        self, *, order: SortOrder = "asc", after: str | None, limit: int
    ) -> Page[SimSpendAlert]:
        return self._spend_alerts.page(after=after, limit=limit, reverse=order == "desc")

    def add_project_spend_alert(
        self,
        project_id: str,
        threshold_cents: int,
        *,
        id: str | None = None,
        recipients: tuple[str, ...] = ("finance@example.com",),
        subject_prefix: str | None = None,
    ) -> SimSpendAlert:
        alerts = self._alerts_of(project_id)
        alert = SimSpendAlert(
            id if id is not None else self.new_spend_alert_id(),
            threshold_cents,
            recipients,
            subject_prefix,
        )
        alerts.add(alert.id, alert)
        return alert

    def remove_project_spend_alert(self, project_id: str, alert_id: str) -> None:
        self._alerts_of(project_id).remove(alert_id)

    def project_spend_alerts(self, project_id: str) -> list[SimSpendAlert]:
        return list(self._alerts_of(project_id))

    def page_project_spend_alerts(
        self, project_id: str, *, order: SortOrder = "asc", after: str | None, limit: int
    ) -> Page[SimSpendAlert]:
        return self._alerts_of(project_id).page(after=after, limit=limit, reverse=order == "desc")

    def rate_limits(self, project_id: str) -> list[SimRateLimit]:
        """The project's rate limits, one per model (DEFAULT_RATE_LIMITS unless changed)."""
        return list(self._limits_of(project_id))

    def set_rate_limit(self, project_id: str, limit: SimRateLimit) -> None:
        """Change the model's limit in place, or add one for a new model at the end."""
        limits = self._limits_of(project_id)
        if limit.id in limits:
            limits.replace(limit.id, limit)
        else:
            limits.add(limit.id, limit)

    def remove_rate_limit(self, project_id: str, model: str) -> None:
        self._limits_of(project_id).remove(f"rl-{model}")

    def page_rate_limits(
        self, project_id: str, *, after: str | None, limit: int
    ) -> Page[SimRateLimit]:
        return self._limits_of(project_id).page(after=after, limit=limit)

    def _alerts_of(self, project_id: str) -> OrderedCollection[SimSpendAlert]:
        alerts = self._project_spend_alerts.get(project_id)
        if alerts is None:
            raise UnknownProjectError(project_id)
        return alerts

    def _limits_of(self, project_id: str) -> OrderedCollection[SimRateLimit]:
        self.project(project_id)
        limits = self._rate_limits.get(project_id)
        if limits is None:
            # Made on first use: most projects keep the defaults and are never asked.
            limits = OrderedCollection()
            for default in DEFAULT_RATE_LIMITS:
                limits.add(default.id, default)
            self._rate_limits[project_id] = limits
        return limits

    def add_service_account(
        self,
        project_id: str,
        name: str,
        *,
        id: str | None = None,
        role: ProjectRole = "member",
        created_at: int | None = None,
    ) -> SimServiceAccount:
        """A service account of the project (keys owned by one add theirs by themselves)."""
        accounts = self._project_service_accounts(project_id)
        account = SimServiceAccount(
            id=id if id is not None else self.new_service_account_id(),
            name=name,
            role=role,
            created_at=self._clock() if created_at is None else created_at,
        )
        accounts.add(account.id, account)
        return account

    def remove_service_account(self, project_id: str, service_account_id: str) -> None:
        """Remove a service account from its project; keys it owns stay, as in the API's data."""
        self._project_service_accounts(project_id).remove(service_account_id)

    def add_admin_key(
        self,
        name: str | None,
        *,
        value: str | None = None,
        id: str | None = None,
        created_at: int | None = None,
        expires_at: int | None = None,
        last_used_at: int | None = None,
        owner: SimAdminKeyOwner | None = None,
    ) -> SimAdminKey:
        """An admin key; `value` is its full secret (drawn when None), served only redacted."""
        if owner is None:
            user = self.default_owner()
            owner = SimAdminKeyOwner(id=user.id, name=user.name, created_at=user.created_at)
        key = SimAdminKey(
            id=id if id is not None else self.new_admin_key_id(),
            name=name,
            value=value if value is not None else self.new_admin_key_value(),
            created_at=self._clock() if created_at is None else created_at,
            expires_at=expires_at,
            last_used_at=last_used_at,
            owner=owner,
        )
        self._admin_keys.add(key.id, key)
        return key

    def delete_admin_key(self, key_id: str) -> None:
        self._admin_keys.remove(key_id)

    def add_member(
        self,
        name: str,
        email: str,
        *,
        id: str | None = None,
        role: str = "reader",
        added_at: int | None = None,
        created_at: int | None = None,
        api_key_last_used_at: int | None = None,
    ) -> SimMember:
        """A user joins the organization (`id` of a key owner makes that owner a member)."""
        added = self._clock() if added_at is None else added_at
        member = SimMember(
            id=id if id is not None else self.new_user_id(),
            name=name,
            email=email,
            role=role,
            added_at=added,
            created_at=added if created_at is None else created_at,
            api_key_last_used_at=api_key_last_used_at,
        )
        self._members.add(member.id, member)
        return member

    def remove_member(self, user_id: str) -> None:
        """The user leaves the organization; project keys they own stay, as in the real API."""
        self._members.remove(user_id)

    def add_invite(
        self,
        email: str,
        *,
        role: InviteRole = "reader",
        id: str | None = None,
        created_at: int | None = None,
        expires_at: int | None = None,
        accepted_at: int | None = None,
        status: InviteStatus | None = None,
        projects: tuple[SimInviteProject, ...] = (),
    ) -> SimInvite:
        """An invite; without `status`: accepted if `accepted_at`, else expired or pending by
        `expires_at` (default: INVITE_LIFETIME after creation) against the clock."""
        created = self._clock() if created_at is None else created_at
        expires = created + INVITE_LIFETIME if expires_at is None else expires_at
        if status is None:
            if accepted_at is not None:
                status = "accepted"
            else:
                status = "expired" if expires <= self._clock() else "pending"
        invite = SimInvite(
            id=id if id is not None else self.new_invite_id(),
            email=email,
            role=role,
            status=status,
            created_at=created,
            expires_at=expires,
            accepted_at=accepted_at,
            projects=projects,
        )
        self._invites.add(invite.id, invite)
        return invite

    def delete_invite(self, invite_id: str) -> None:
        self._invites.remove(invite_id)

    def add_certificate(
        self,
        name: str | None,
        *,
        expires_at: int,
        id: str | None = None,
        created_at: int | None = None,
        valid_at: int | None = None,
        active: bool = True,
    ) -> SimCertificate:
        """An organization certificate; valid from `valid_at` (default: its upload)."""
        created = self._clock() if created_at is None else created_at
        certificate = SimCertificate(
            id=id if id is not None else self.new_certificate_id(),
            name=name,
            created_at=created,
            active=active,
            valid_at=created if valid_at is None else valid_at,
            expires_at=expires_at,
        )
        self._certificates.add(certificate.id, certificate)
        return certificate

    def delete_certificate(self, certificate_id: str) -> None:
        self._certificates.remove(certificate_id)

    def default_owner(self) -> SimUser:
        """The user who owns keys added without an explicit owner."""
        if self._default_owner is None:
            self._default_owner = SimUser(
                id=self.new_user_id(),
                name="Default Owner",
                email="default.owner@example.com",
                role="owner",
                created_at=self._clock(),
            )
        return self._default_owner

    # -- queries ---------------------------------------------------------

    def project(self, project_id: str) -> SimProject:
        project = self._projects.get(project_id)
        if project is None:
            raise UnknownProjectError(project_id)
        return project

    def projects(self, include_archived: bool = False) -> list[SimProject]:
        return [p for p in self._projects if include_archived or p.status != "archived"]

    def keys(self, project_id: str) -> list[SimApiKey]:
        """Every key of the project, whatever its owner's access."""
        return list(self._project_keys(project_id))

    def key_count(self) -> int:
        """Keys across all projects, archived ones included."""
        return self._key_count

    def service_accounts(self, project_id: str) -> list[SimServiceAccount]:
        return list(self._project_service_accounts(project_id))

    def admin_keys(self) -> list[SimAdminKey]:
        return list(self._admin_keys)

    def members(self) -> list[SimMember]:
        return list(self._members)

    def invites(self) -> list[SimInvite]:
        return list(self._invites)

    def certificates(self) -> list[SimCertificate]:
        return list(self._certificates)

    def page_admin_keys(
        self, *, order: SortOrder = "asc", after: str | None, limit: int
    ) -> Page[SimAdminKey]:
        """Admin keys in creation (insertion) order, or newest first for `desc`."""
        return self._admin_keys.page(after=after, limit=limit, reverse=order == "desc")

    def page_members(
        self, *, after: str | None, limit: int, emails: frozenset[str] | None = None
    ) -> Page[SimMember]:
        """Members in the order they were added; `emails` keeps only those addresses."""
        if emails is None:
            return self._members.page(after=after, limit=limit)
        return self._members.page(after=after, limit=limit, keep=lambda m: m.email in emails)

    def page_invites(self, *, after: str | None, limit: int) -> Page[SimInvite]:
        return self._invites.page(after=after, limit=limit)

    def page_certificates(
        self, *, order: SortOrder = "desc", after: str | None, limit: int
    ) -> Page[SimCertificate]:
        """Certificates newest first by default, as the API's `order` defaults to desc."""
        return self._certificates.page(after=after, limit=limit, reverse=order == "desc")

    def page_service_accounts(
        self, project_id: str, *, after: str | None, limit: int
    ) -> Page[SimServiceAccount]:
        return self._project_service_accounts(project_id).page(after=after, limit=limit)

    def page_projects(
        self, *, include_archived: bool, after: str | None, limit: int
    ) -> Page[SimProject]:
        """One page of the project list; raises UnknownCursorError for an unknown `after`."""
        if include_archived:
            return self._projects.page(after=after, limit=limit)
        return self._projects.page(after=after, limit=limit, keep=_is_active_project)

    def page_keys(
        self, project_id: str, *, access: AccessFilter, after: str | None, limit: int
    ) -> Page[SimApiKey]:
        """One page of a project's keys whose owner access matches `access`."""
        keys = self._project_keys(project_id)
        if access == "any":
            return keys.page(after=after, limit=limit)
        return keys.page(after=after, limit=limit, keep=lambda k: k.owner_project_access == access)

    def _project_keys(self, project_id: str) -> OrderedCollection[SimApiKey]:
        keys = self._keys.get(project_id)
        if keys is None:
            raise UnknownProjectError(project_id)
        return keys

    def _project_service_accounts(self, project_id: str) -> OrderedCollection[SimServiceAccount]:
        accounts = self._service_accounts.get(project_id)
        if accounts is None:
            raise UnknownProjectError(project_id)
        return accounts

    def _redacted_value(self, owner: SimUser | SimServiceAccount) -> str:
        prefix = "sk-svcacct-" if isinstance(owner, SimServiceAccount) else "sk-proj-"
        visible = self.new_id("", 8)
        return f"{prefix}{visible[:2]}***{visible[4:]}"


def _is_active_project(project: SimProject) -> bool:
    return project.status != "archived"


@dataclass(frozen=True)
class OrganizationSpec:
    """What `build_organization` grows; the same spec always gives the same organization."""

    seed: int = 1
    projects: int = 10
    keys_per_project: int = 5
    archived_fraction: float = 0.1
    never_used_fraction: float = 0.2
    service_account_fraction: float = 0.3
    inactive_owner_fraction: float = 0.1
    awkward_names: bool = True
    now: int | None = None  # None: the wall clock when built
    # The organization-level resources below draw from their own random
    # generator, so they never shift the projects, keys and owners above.
    admin_keys: int = 6
    invites: int = 5
    certificates: int = 4
    # Key owners who left the organization (not listed as users); None: 5% of
    # the users owning keys, at least one.
    departed_users: int | None = None
    # Share of projects with one more service account that owns no key.
    keyless_service_account_fraction: float = 0.3
    # Usage (its own generator): keys used within ACTIVE_WINDOW (2 days) of `now`
    # have background usage; `active_keys=n` makes exactly n keys of active projects
    # active instead (the most recently used, their last use moved into the window).
    active_keys: int | None = None
    models_per_source: int = 2  # models each active key uses in each source
    usage_sources: tuple[UsageSource, ...] = USAGE_SOURCES
    usage_lateness: int = DEFAULT_LATENESS  # seconds a bucket keeps growing after its end
    cost_lateness: int = DEFAULT_COST_LATENESS
    # Spend limits and alerts of the organization and its projects.
    spend_controls: bool = True
    # The audit log's last AUDIT_HISTORY_DAYS (its own generator): key creations with
    # their scopes, logins and login failures, invites and members added.
    audit_history: bool = True
    # False: the organization never enabled audit logging (the listing refuses).
    audit_logging: bool = True


@dataclass
class _ProjectOwners:
    """Who can own keys in one project while it is being generated."""

    active_users: list[SimUser] = field(default_factory=list)
    inactive_users: list[SimUser] = field(default_factory=list)
    service_accounts: list[SimServiceAccount] = field(default_factory=list)


class _Builder:
    def __init__(self, spec: OrganizationSpec, into: type[Organization] = Organization) -> None:
        self.spec = spec
        self.now = spec.now if spec.now is not None else int(time.time())
        self.rng = random.Random(spec.seed)
        self.org = into(seed=spec.seed, now=self.now)
        # Users belong to the organization and take part in several projects.
        self.users = [self._user(i) for i in range(max(3, min(spec.projects * 2, 5_000)))]
        self.service_account_index = 0
        self.key_index = 0

    def _user(self, index: int) -> SimUser:
        return SimUser(
            id=self.org.new_user_id(),
            name=names.person_name(self.rng, index, self.spec.awkward_names),
            email=f"user{index}@example.com",
            role="member",
            created_at=self.now - (MAX_KEY_AGE_DAYS + 200) * DAY - self.rng.randrange(90 * DAY),
        )

    def build(self) -> Organization:
        spec = self.spec
        total = spec.projects * spec.keys_per_project
        # Stratified ages, shuffled: an even spread from 0 to MAX_KEY_AGE_DAYS
        # even for a small organization, in a seed-dependent order.
        span = MAX_KEY_AGE_DAYS * DAY
        ages = [int((i + self.rng.random()) * span / total) for i in range(total)]
        self.rng.shuffle(ages)
        archived = set(
            self.rng.sample(range(spec.projects), round(spec.projects * spec.archived_fraction))
        )
        for index in range(spec.projects):
            project = self.org.add_project(
                names.project_name(self.rng, index, spec.awkward_names),
                created_at=self.now - span - DAY - self.rng.randrange(60 * DAY),
            )
            if index in archived:
                project = self.org.archive_project(
                    project.id, archived_at=self.now - DAY - self.rng.randrange(30 * DAY)
                )
            start = index * spec.keys_per_project
            self._fill(project, ages[start : start + spec.keys_per_project])
        active = self._active_keys()
        _OrganizationExtras(self).build()
        self._usage(active)
        if spec.spend_controls:
            self._spend_controls()
        self.org.audit_logging = spec.audit_logging
        if spec.audit_history:
            _AuditHistory(self).build()
        return self.org

    def _active_keys(self) -> list[tuple[SimProject, SimApiKey]]:
        """The keys with background usage, in organization order; with
        `active_keys`, the most recently used ones, moved into the active window."""
        spec = self.spec
        since = self.now - ACTIVE_WINDOW
        candidates = [
            (project, key) for project in self.org.projects() for key in self.org.keys(project.id)
        ]
        if spec.active_keys is None:
            return [
                (p, k)
                for p, k in candidates
                if k.last_used_at is not None and k.last_used_at >= since
            ]
        ranked = sorted(
            range(len(candidates)),
            key=lambda i: -(candidates[i][1].last_used_at or -1),
        )
        chosen = sorted(ranked[: max(0, spec.active_keys)])
        active: list[tuple[SimProject, SimApiKey]] = []
        for i in chosen:
            project, key = candidates[i]
            if key.last_used_at is None or key.last_used_at < since:
                used = max(key.created_at, self.now - series_hash(spec.seed, key.id) % (2 * HOUR))
                key = self.org.set_key_last_used(project.id, key.id, used)
            active.append((project, key))
        return active

    def _usage(self, active: list[tuple[SimProject, SimApiKey]]) -> None:
        spec = self.spec
        usage = self.org.usage
        usage.lateness = spec.usage_lateness
        usage.cost_lateness = spec.cost_lateness
        plan = UsagePlan(spec.usage_sources, spec.models_per_source, spec.seed)
        projects: dict[str, tuple[SimProject, str | None]] = {}
        for index, (project, key) in enumerate(active):
            owner = key.owner
            user_id = owner.id if isinstance(owner, SimUser) else None
            if project.id not in projects or projects[project.id][1] is None:
                projects[project.id] = (project, user_id)
            plan_series(
                usage,
                plan,
                project_id=project.id,
                api_key_id=key.id,
                user_id=user_id,
                start=key.created_at,
                index=index,
            )
        for index, (project, user_id) in enumerate(projects.values()):
            h = series_hash(spec.seed, project.id, "costs")
            if index % plan.playground_every == 0 and "completions" in spec.usage_sources:
                # Usage without a key (the playground): api_key_id null.
                usage.add_series(
                    "completions",
                    project_id=project.id,
                    api_key_id=None,
                    user_id=user_id,
                    model="gpt-4o",
                    start=project.created_at,
                    rate=2 + h % 5,
                    per_request={"input_tokens": 800, "output_tokens": 400},
                )
            usage.add_cost_series(
                STORAGE_LINE_ITEM,
                project_id=project.id,
                start=project.created_at,
                micro_per_hour=100 + h % 900,
                quantity_per_hour=1 + (h >> 10) % 20,
                quantity_unit="gibibyte_hours",
            )
        if projects:
            # A cost of no project at all.
            usage.add_cost_series(
                COMMITMENT_LINE_ITEM,
                project_id=None,
                start=self.now - 400 * DAY,
                micro_per_hour=50_000,
            )

    def _spend_controls(self) -> None:
        """An organization limit and two alerts; a limit for most projects (the first one
        enforcing), none for every fourth and the last; an alert at 80% of each limit."""
        rng = random.Random(f"organization-spend-{self.spec.seed}")
        org = self.org
        org.set_spend_limit(500_000)
        org.add_spend_alert(250_000, subject_prefix="OpenAI spend")
        org.add_spend_alert(400_000, recipients=("finance@example.com", "cto@example.com"))
        projects = org.projects(include_archived=True)
        for index, project in enumerate(projects):
            if len(projects) > 1 and (index % 4 == 3 or index == len(projects) - 1):
                continue
            cents = 10_000 if index == 0 else rng.randrange(1, 50) * 10_000
            org.set_project_spend_limit(project.id, cents, enforcing=index == 0)
            if index == 0:
                org.add_project_spend_alert(project.id, cents // 2)
            org.add_project_spend_alert(project.id, cents * 8 // 10)

    def _fill(self, project: SimProject, ages: list[int]) -> None:
        spec = self.spec
        rng = self.rng
        owners = _ProjectOwners()
        newest = project.archived_at if project.archived_at is not None else self.now
        for age in ages:
            created = min(self.now - age, newest)
            draw = rng.random()
            access: OwnerProjectAccess = "active"
            owner: SimUser | SimServiceAccount
            if draw < spec.service_account_fraction:
                owner = self._service_account(owners)
            elif draw < spec.service_account_fraction + spec.inactive_owner_fraction:
                owner = self._member(owners.inactive_users, owners)
                access = "inactive"
            else:
                owner = self._member(owners.active_users, owners)
            last_used: int | None = None
            if rng.random() >= spec.never_used_fraction:
                last_used = self._last_use(created, newest)
            self.org.add_key(
                project.id,
                names.key_name(rng, self.key_index, spec.awkward_names),
                created_at=created,
                last_used_at=last_used,
                owner=owner,
                owner_project_access=access,
            )
            self.key_index += 1

    def _last_use(self, created: int, newest: int) -> int:
        # Half the used keys are in daily use; the rest went quiet at any time.
        if self.rng.random() < 0.5:
            return max(created, newest - self.rng.randrange(2 * DAY))
        return created + int(self.rng.random() * (newest - created))

    def _member(self, pool: list[SimUser], owners: _ProjectOwners) -> SimUser:
        """A user of this project from `pool`, which grows now and then (up to 4)."""
        if not pool or (len(pool) < 4 and self.rng.random() < 0.3):
            # The project's first active member is its owner.
            role = "owner" if pool is owners.active_users and not pool else "member"
            pool.append(replace(self._user_outside(owners), role=role))
        return pool[self.rng.randrange(len(pool))]

    def _user_outside(self, owners: _ProjectOwners) -> SimUser:
        """An organization user not yet in this project, hiring one if the draw is taken."""
        taken = {u.id for u in owners.active_users} | {u.id for u in owners.inactive_users}
        candidate = self.users[self.rng.randrange(len(self.users))]
        if candidate.id in taken:
            candidate = self._user(len(self.users))
            self.users.append(candidate)
        return candidate

    def _service_account(self, owners: _ProjectOwners) -> SimServiceAccount:
        # Service accounts belong to one project; most projects need one or two.
        if len(owners.service_accounts) < 2 and (
            not owners.service_accounts or self.rng.random() < 0.2
        ):
            index = self.service_account_index
            self.service_account_index += 1
            owners.service_accounts.append(
                SimServiceAccount(
                    id=self.org.new_service_account_id(),
                    name=names.service_account_name(self.rng, index, self.spec.awkward_names),
                    role="member",
                    created_at=self.now - MAX_KEY_AGE_DAYS * DAY - self.rng.randrange(30 * DAY),
                )
            )
        return owners.service_accounts[self.rng.randrange(len(owners.service_accounts))]


@dataclass(frozen=True, slots=True)
class _AdminKeyCase:
    """One kind of admin key a dashboard or alert must see (times relative to now)."""

    age: int
    expires_in: int | None  # None: never expires
    idle: int | None  # None: never used
    service_account: bool = False


# The first admin keys of a generated organization, one of each kind; more are random.
_ADMIN_KEY_CASES: tuple[_AdminKeyCase, ...] = (
    _AdminKeyCase(age=40 * DAY, expires_in=None, idle=600),  # never expires, in use
    _AdminKeyCase(age=85 * DAY, expires_in=4 * DAY, idle=3_600),  # expires in a few days
    _AdminKeyCase(age=150 * DAY, expires_in=200 * DAY, idle=45 * DAY),  # long idle
    _AdminKeyCase(age=20 * DAY, expires_in=None, idle=None),  # never used, 20 days old
    _AdminKeyCase(age=400 * DAY, expires_in=None, idle=DAY, service_account=True),  # > 180 days
    _AdminKeyCase(age=10 * DAY, expires_in=25 * DAY, idle=2 * DAY, service_account=True),
)
# (age, expires_in, active) of the first certificates: expired, expiring within 30
# days, far off, and an inactive one; more are random.
_CERTIFICATE_CASES: tuple[tuple[int, int, bool], ...] = (
    (400 * DAY, -5 * DAY, True),
    (340 * DAY, 20 * DAY, True),
    (30 * DAY, 700 * DAY, True),
    (90 * DAY, 275 * DAY, False),
)
# (status, age) of the first invites; more are random.
_INVITE_CASES: tuple[tuple[InviteStatus, int], ...] = (
    ("pending", DAY),
    ("pending", 5 * DAY),
    ("accepted", 40 * DAY),
    ("expired", 20 * DAY),
    ("pending", 2 * DAY),
)


class _OrganizationExtras:
    """Members, departures, admin keys, invites, certificates and keyless service
    accounts of a generated organization, drawn after (and apart from) its keys."""

    def __init__(self, builder: _Builder) -> None:
        self.builder = builder
        self.spec = builder.spec
        self.org = builder.org
        self.now = builder.now
        self.rng = random.Random(f"organization-spec-extras-{builder.spec.seed}")

    def build(self) -> None:
        self._members()
        self._keyless_service_accounts()
        self._admin_keys()
        self._invites()
        self._certificates()

    def _members(self) -> None:
        last_used: dict[str, int | None] = {}
        active_owner: set[str] = set()
        for project in self.org.projects(include_archived=True):
            for key in self.org.keys(project.id):
                owner = key.owner
                if isinstance(owner, SimServiceAccount):
                    continue
                seen = last_used.get(owner.id)
                used = key.last_used_at
                if used is not None and (seen is None or used > seen):
                    last_used[owner.id] = used
                else:
                    last_used.setdefault(owner.id, seen)
                if key.owner_project_access == "active":
                    active_owner.add(owner.id)
        owners = [u for u in self.builder.users if u.id in last_used]
        wanted = self.spec.departed_users
        if wanted is None:
            wanted = max(1, round(len(owners) * 0.05)) if owners else 0
        # Those whose every key lost project access left first: that is how leaving looks.
        gone = [u for u in owners if u.id not in active_owner]
        staying = [u for u in owners if u.id in active_owner]
        self.rng.shuffle(gone)
        self.rng.shuffle(staying)
        departed = {u.id for u in (gone + staying)[: max(0, wanted)]}
        self.departed = departed
        index = 0
        for user in self.builder.users:
            if user.id in departed:
                continue
            # The first member owns the organization, the second has a role outside the
            # spec's owner/reader (the product has more); a few more owners, readers else.
            draw = self.rng.random()
            if index == 0 or (index > 1 and draw < 0.1):
                role = "owner"
            elif index == 1 or draw < 0.15:
                role = "member"
            else:
                role = "reader"
            self.org.add_member(
                user.name,
                user.email,
                id=user.id,
                role=role,
                added_at=user.created_at + self.rng.randrange(60 * DAY),
                created_at=user.created_at,
                api_key_last_used_at=last_used.get(user.id),
            )
            index += 1

    def _keyless_service_accounts(self) -> None:
        fraction = self.spec.keyless_service_account_fraction
        for project in self.org.projects(include_archived=True):
            if self.rng.random() >= fraction:
                continue
            index = self.builder.service_account_index
            self.builder.service_account_index += 1
            self.org.add_service_account(
                project.id,
                names.service_account_name(self.rng, index, self.spec.awkward_names),
                role="owner" if self.rng.random() < 0.5 else "member",
                created_at=project.created_at + self.rng.randrange(30 * DAY),
            )

    def _admin_keys(self) -> None:
        owners = [m for m in self.org.members() if m.role == "owner"]
        cases = list(_ADMIN_KEY_CASES[: self.spec.admin_keys])
        for _ in range(self.spec.admin_keys - len(cases)):
            age = self.rng.randrange(DAY, 500 * DAY)
            expires = None if self.rng.random() < 0.4 else self.rng.randrange(-age, 365 * DAY - age)
            idle = None if self.rng.random() < 0.2 else self.rng.randrange(age)
            cases.append(_AdminKeyCase(age, expires, idle, self.rng.random() < 0.3))
        # Added in creation order, so that insertion order is the API's creation order.
        for index, case in sorted(enumerate(cases), key=lambda c: -c[1].age):
            created = self.now - case.age
            owner: SimAdminKeyOwner
            if case.service_account or not owners:
                owner = SimAdminKeyOwner(
                    id=self.org.new_service_account_id(),
                    name=names.service_account_name(self.rng, index, self.spec.awkward_names),
                    created_at=created - DAY,
                    role="member",
                    type="service_account",
                )
            else:
                member = owners[self.rng.randrange(len(owners))]
                owner = SimAdminKeyOwner(
                    id=member.id, name=member.name, created_at=member.created_at, role="owner"
                )
            self.org.add_admin_key(
                None if index == 3 else f"admin-key-{index}",
                created_at=created,
                expires_at=None if case.expires_in is None else self.now + case.expires_in,
                last_used_at=None if case.idle is None else self.now - case.idle,
                owner=owner,
            )

    def _invites(self) -> None:
        members = self.org.members()
        active = self.org.projects()
        cases = list(_INVITE_CASES[: self.spec.invites])
        statuses: tuple[InviteStatus, ...] = ("pending", "accepted", "expired")
        for _ in range(self.spec.invites - len(cases)):
            cases.append((statuses[self.rng.randrange(3)], self.rng.randrange(DAY, 90 * DAY)))
        for index, (status, age) in sorted(enumerate(cases), key=lambda c: -c[1][1]):
            created = self.now - age
            email = f"invitee{index}@example.com"
            accepted_at: int | None = None
            if status == "accepted":
                accepted_at = created + self.rng.randrange(INVITE_LIFETIME)
                if members:
                    email = members[self.rng.randrange(len(members))].email
            expires_at = created + INVITE_LIFETIME
            if status == "pending" and expires_at <= self.now:
                expires_at = self.now + DAY
            if status == "expired" and expires_at > self.now:
                expires_at = self.now - 1
            picked = self.rng.sample(active, min(len(active), self.rng.randrange(3)))
            self.org.add_invite(
                email,
                role="owner" if self.rng.random() < 0.2 else "reader",
                created_at=created,
                expires_at=expires_at,
                accepted_at=accepted_at,
                status=status,
                projects=tuple(
                    SimInviteProject(p.id, "owner" if self.rng.random() < 0.3 else "member")
                    for p in picked
                ),
            )

    def _certificates(self) -> None:
        cases = list(_CERTIFICATE_CASES[: self.spec.certificates])
        for _ in range(self.spec.certificates - len(cases)):
            age = self.rng.randrange(DAY, 700 * DAY)
            cases.append((age, self.rng.randrange(-age // 2, 800 * DAY), self.rng.random() < 0.7))
        for index, (age, expires_in, active) in sorted(enumerate(cases), key=lambda c: -c[1][0]):
            created = self.now - age
            self.org.add_certificate(
                f"mtls-certificate-{index}",
                created_at=created,
                valid_at=created - DAY,
                expires_at=self.now + expires_in,
                active=active,
            )


AUDIT_HISTORY_DAYS = 7
# Share of the history's keys created with no scopes: unrestricted.
UNRESTRICTED_KEY_FRACTION = 0.3


class _AuditHistory:
    """The audit log of a generated organization's last days, so that a backfill has
    key scopes and event times to learn: an `api_key.created` for each key created in
    that time, by its owner (in a session, or a service account with its key), a few
    logins and login failures, the invites sent and accepted, members added."""

    def __init__(self, builder: _Builder) -> None:
        self.org = builder.org
        self.now = builder.now
        self.since = builder.now - AUDIT_HISTORY_DAYS * DAY
        self.rng = random.Random(f"organization-audit-history-{builder.spec.seed}")

    def build(self) -> None:
        self._keys()
        self._logins()
        self._invites_and_members()

    def _keys(self) -> None:
        for project in self.org.projects(include_archived=True):
            for key in self.org.keys(project.id):
                if key.created_at < self.since:
                    continue
                self.org.audit_key_created(
                    project.id,
                    key.id,
                    self._scopes(),
                    actor=self._creator(key),
                    effective_at=key.created_at,
                )

    def _scopes(self) -> list[str]:
        if self.rng.random() < UNRESTRICTED_KEY_FRACTION:
            return []
        return sorted(self.rng.sample(KEY_SCOPES, self.rng.randrange(1, 4)))

    def _creator(self, key: SimApiKey) -> SimAuditActor:
        owner = key.owner
        if isinstance(owner, SimServiceAccount):
            return SimAuditActor(
                "service_account_api_key",
                api_key_id=_draw_id(self.rng, "key_", 16),
                service_account_id=owner.id,
            )
        return SimAuditActor(
            "session",
            user_id=owner.id,
            user_email=owner.email,
            ip_address=f"203.0.113.{self.rng.randrange(1, 255)}",
        )

    def _logins(self) -> None:
        members = self.org.members()
        if not members:
            return
        for _ in range(4 * AUDIT_HISTORY_DAYS):
            member = members[self.rng.randrange(len(members))]
            at = self.since + self.rng.randrange(AUDIT_HISTORY_DAYS * DAY)
            actor = SimAuditActor(
                "session",
                user_id=member.id,
                user_email=member.email,
                ip_address=f"203.0.113.{self.rng.randrange(1, 255)}",
            )
            # A mistyped password now and then, then the login that worked.
            if self.rng.random() < 0.15:
                self.org.record_audit_event("login.failed", effective_at=at - 30, actor=actor)
            self.org.record_audit_event("login.succeeded", effective_at=at, actor=actor)

    def _invites_and_members(self) -> None:
        for invite in self.org.invites():
            if invite.created_at >= self.since:
                self.org.record_audit_event(
                    "invite.sent",
                    effective_at=invite.created_at,
                    details={
                        "id": invite.id,
                        "data": {"email": invite.email, "role": invite.role},
                    },
                )
            if invite.accepted_at is not None and invite.accepted_at >= self.since:
                self.org.record_audit_event(
                    "invite.accepted", effective_at=invite.accepted_at, details={"id": invite.id}
                )
        for member in self.org.members():
            if member.added_at >= self.since:
                self.org.record_audit_event(
                    "user.added",
                    effective_at=member.added_at,
                    details={"id": member.id, "data": {"role": member.role}},
                )


def build_organization(spec: OrganizationSpec) -> Organization:
    """A seeded organization: the same spec always yields the same projects, keys and owners."""
    return _Builder(spec).build()


def build_organization_as(spec: OrganizationSpec, into: type[OrgT]) -> OrgT:
    """``build_organization``, built as ``into`` (a subclass, such as the demo's)."""
    org = _Builder(spec, into).build()
    assert isinstance(org, into)
    return org
