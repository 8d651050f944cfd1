"""The organization `--demo` serves: the generated one of today plus a case for every alert.

`demo_organization(admin_key)` is `build_organization(OrganizationSpec(seed=7,
projects=8, keys_per_project=6))` (the same projects and keys) with its
organization-level resources placed by hand instead of drawn, so that every
dashboard panel has data and every expiry alert has one case that fires and one
that does not:

- admin keys: the exporter's own (its full value is `admin_key`, so its
  `redacted_value` matches it) expiring within 7 days, one expiring within 14
  days, one never expiring (`terraform`), one idle for more than 30 days, one
  never used and older than 7 days (and unnamed), one older than 180 days owned by
  a service account; the last two never expire either, so three admin keys have no
  expiry;
- a user who left the organization but still owns two project keys;
- invites: two pending, one expired, one accepted (by a user now a member);
- certificates: one expiring within 30 days, one expired but still active, one
  inactive, one valid for years;
- service accounts: the generated ones of several projects, plus a keyless one
  with the owner role in the first project;
- usage and spend, for the usage alerts, on the generated keys of the first project
  (the projects and keys stay today's): the departed user's pipeline key keeps making
  requests; a member's key last used 30 to 90 days ago (`dormant_key_id`) is used
  again DORMANT_WAKES_AFTER (1 minute) after the start, so whatever scrapes the demo
  first sees it dormant; the key with the lightest steady usage (`spike_key_id`)
  bursts to 20 times its peak from SPIKE_STARTS_AFTER (65 minutes: the spike alert
  compares the last hour with the hours before it, which a fresh Prometheus has only
  after an hour) for three hours; spend limits are placed against what each project
  has spent this month when the demo starts: the third project with a limit at 100 % of
  it, enforcing, the second at 85 % (near it), every other at 60 % or less, the
  organization at 90 % of its own.

- the audit log: the generated history of the last 7 days, then a steady trickle of
  logins, key creations, updates and deletions, and in its first minute one case of
  each audit alert (`demo_audit`).

The timed part is clock-driven (`ScenarioOrganization`): each step is applied at the
first read of keys, members or the audit log at or after its time, so it needs no task
of its own; the audit trickle is a feed that catches up to the clock at each such read.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from exporter.simulator.audit import AuditQuery, SimAuditEvent
from exporter.simulator.demo_audit import DemoAuditTimeline
from exporter.simulator.ordered import Page
from exporter.simulator.organization import (
    ADMIN_KEY_VISIBLE_SUFFIX,
    DAY,
    AccessFilter,
    Organization,
    OrganizationSpec,
    SimAdminKeyOwner,
    SimApiKey,
    SimInviteProject,
    SimMember,
    SimUser,
    build_organization_as,
)
from exporter.simulator.usage import GROUP_FIELDS, METRICS, USAGE_SOURCES

HOUR = 3_600
DEMO_SPEC = OrganizationSpec(
    seed=7,
    projects=8,
    keys_per_project=6,
    admin_keys=0,
    invites=0,
    certificates=0,
    departed_users=0,
)

OWN_ADMIN_KEY_ID = "key_demoExporterSelf"
ADMIN_KEY_EXPIRING_14_DAYS_ID = "key_demoExpires14Day"
ADMIN_KEY_NEVER_EXPIRES_ID = "key_demoNeverExpires"
ADMIN_KEY_IDLE_ID = "key_demoIdle45Days00"
ADMIN_KEY_NEVER_USED_ID = "key_demoNeverUsed000"
ADMIN_KEY_OLD_ID = "key_demoOlder180Days"

DEPARTED_USER = SimUser(
    id="user-demoDepartedUser00000000",
    name="Dana Departed",
    email="dana.departed@example.com",
    role="member",
    created_at=0,  # set relative to `now` below
)
DEPARTED_KEY_IDS = ("key_demoDepartedKey1", "key_demoDepartedKey2")

INVITE_PENDING_ID = "invite-demoPendingNew"
INVITE_PENDING_SOON_ID = "invite-demoPendingExpiresSoon"
INVITE_EXPIRED_ID = "invite-demoExpired"
INVITE_ACCEPTED_ID = "invite-demoAccepted"
NEW_HIRE_USER_ID = "user-demoNewHireFromInvite000"

OWNER_SERVICE_ACCOUNT_ID = "svc_acct_demoProjectOwnerBot00000"
CERTIFICATE_EXPIRING_ID = "cert_demoExpiresIn20Days"
CERTIFICATE_EXPIRED_ID = "cert_demoExpired3DaysAgo"
CERTIFICATE_INACTIVE_ID = "cert_demoInactive"
CERTIFICATE_FAR_OFF_ID = "cert_demoValidForYears"

DORMANT_WAKES_AFTER = 60  # seconds after the start
SPIKE_STARTS_AFTER = 65 * 60
SPIKE_LASTS = 3 * HOUR
SPIKE_OVER_PEAK = 20  # the burst's tokens per minute, over the key's steady peak
# Month-to-date spend of the project near its limit, of the others, of the organization.
NEAR_LIMIT_PERCENT = 85
OTHER_PROJECTS_AT_MOST_PERCENT = 60
ORGANIZATION_PERCENT = 90

# Tails of the other admin keys' values; one that equals the demo key's own tail is skipped,
# so only the demo key's redacted value matches the key the exporter holds.
_TAILS = ("x1q", "y2r", "z3s", "w4t", "v5u", "u6v", "t7w")


Step = Callable[[Organization], object]


@dataclass
class _Scenario:
    steps: list[tuple[int, Step]] = field(default_factory=list)  # by time, oldest first
    clock: Callable[[], float] = time.time
    # Called with the clock's second at each advance, after the steps (the audit trickle).
    feeds: list[Callable[[int], object]] = field(default_factory=list)


class ScenarioOrganization(Organization):
    """An organization with steps that happen at given times (Unix seconds): each is
    applied, in order, at the first read of keys or members at or after its time, on the
    `clock` (the simulator's, wall time by default)."""

    dormant_key_id: str  # the key that wakes up (demo_organization)
    spike_key_id: str  # the key that bursts

    def __init__(self, *, seed: int = 0, now: int | None = None) -> None:
        super().__init__(seed=seed, now=now)
        self._scenario = _Scenario()

    def set_clock(self, clock: Callable[[], float]) -> None:
        """The clock the steps are timed on (the simulator's; wall time by default)."""
        self._scenario.clock = clock

    def at(self, when: int, step: Step) -> None:
        self._scenario.steps.append((when, step))
        self._scenario.steps.sort(key=lambda pair: pair[0])

    def feed(self, feed: Callable[[int], object]) -> None:
        """Something that happens continuously (the audit trickle): called with the clock's
        second at every advance, it records whatever it has for the time passed."""
        self._scenario.feeds.append(feed)

    def advance(self) -> None:
        """Applies every step whose time has come, then lets the feeds catch up."""
        steps = self._scenario.steps
        now = self._scenario.clock()
        while steps and steps[0][0] <= now:
            _, step = steps.pop(0)
            step(self)
        for feed in self._scenario.feeds:
            feed(int(now))

    def pending(self) -> list[int]:
        return [when for when, _ in self._scenario.steps]

    def page_keys(
        self, project_id: str, *, access: AccessFilter, after: str | None, limit: int
    ) -> Page[SimApiKey]:
        self.advance()
        return super().page_keys(project_id, access=access, after=after, limit=limit)

    def page_members(
        self, *, after: str | None, limit: int, emails: frozenset[str] | None = None
    ) -> Page[SimMember]:
        self.advance()
        return super().page_members(after=after, limit=limit, emails=emails)

    def page_audit_events(
        self,
        query: AuditQuery,
        *,
        limit: int,
        after: str | None = None,
        before: str | None = None,
    ) -> Page[SimAuditEvent]:
        self.advance()
        return super().page_audit_events(query, limit=limit, after=after, before=before)


def month_start(now: int) -> int:
    moment = datetime.fromtimestamp(now, UTC)
    return int(moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0).timestamp())


def month_to_date(org: Organization, now: int) -> dict[str | None, float]:
    """Dollars spent this month per project (None: no project), as the API reports at
    `now`: what the exporter's month-to-date gauges show."""
    spent: dict[str | None, float] = {}
    for groups in org.usage.reported_costs(
        month_start(now), now + 1, ("project_id",), now=now
    ).values():
        for (project_id, *_), cost in groups.items():
            key = None if project_id is None else str(project_id)
            spent[key] = spent.get(key, 0.0) + cost.amount
    return spent


def demo_organization(
    admin_key: str, *, now: int | None = None, clock: Callable[[], float] = time.time
) -> ScenarioOrganization:
    """The demo organization; `admin_key` is the key the demo exporter sends. `clock`
    times its scenario (the dormant key waking up)."""
    at = int(time.time()) if now is None else now
    org = build_organization_as(replace(DEMO_SPEC, now=at), ScenarioOrganization)
    org.set_clock(clock)
    owner = next(m for m in org.members() if m.role == "owner")
    as_owner = SimAdminKeyOwner(id=owner.id, name=owner.name, created_at=owner.created_at)
    robot = SimAdminKeyOwner(
        id="svc_acct_demoAdminRobot0000000000",
        name="admin-automation",
        created_at=at - 500 * DAY,
        role="member",
        type="service_account",
    )
    tails = iter(t for t in _TAILS if t != admin_key[-ADMIN_KEY_VISIBLE_SUFFIX:])

    def value(slug: str) -> str:
        return f"sk-admin-demo-{slug}-{next(tails)}"

    # Added oldest first: the listing's asc order is creation order.
    org.add_admin_key(
        "legacy-automation",
        id=ADMIN_KEY_OLD_ID,
        value=value("legacy"),
        created_at=at - 400 * DAY,
        last_used_at=at - 6 * HOUR,
        owner=robot,
    )
    org.add_admin_key(
        "quarterly-audit",
        id=ADMIN_KEY_IDLE_ID,
        value=value("audit"),
        created_at=at - 150 * DAY,
        expires_at=at + 200 * DAY,
        last_used_at=at - 45 * DAY,
        owner=as_owner,
    )
    org.add_admin_key(
        "terraform",
        id=ADMIN_KEY_NEVER_EXPIRES_ID,
        value=value("terraform"),
        created_at=at - 100 * DAY,
        last_used_at=at - 2 * HOUR,
        owner=as_owner,
    )
    org.add_admin_key(
        "ci-admin",
        id=ADMIN_KEY_EXPIRING_14_DAYS_ID,
        value=value("ci"),
        created_at=at - 80 * DAY,
        expires_at=at + 12 * DAY,
        last_used_at=at - HOUR,
        owner=as_owner,
    )
    org.add_admin_key(
        "openai-key-exporter (demo)",
        id=OWN_ADMIN_KEY_ID,
        value=admin_key,
        created_at=at - 60 * DAY,
        expires_at=at + 5 * DAY,
        last_used_at=at - 30,
        owner=as_owner,
    )
    org.add_admin_key(
        None,
        id=ADMIN_KEY_NEVER_USED_ID,
        value=value("unused"),
        created_at=at - 20 * DAY,
        owner=as_owner,
    )

    # A user who left the organization: not a member, but their keys live on.
    departed = replace(DEPARTED_USER, created_at=at - 900 * DAY)
    project = org.projects()[0]
    org.add_key(
        project.id,
        "departed-user-pipeline",
        id=DEPARTED_KEY_IDS[0],
        created_at=at - 300 * DAY,
        last_used_at=at - 3 * HOUR,
        owner=departed,
        owner_project_access="inactive",
    )
    org.add_key(
        project.id,
        "departed-user-notebook",
        id=DEPARTED_KEY_IDS[1],
        created_at=at - 200 * DAY,
        owner=departed,
        owner_project_access="inactive",
    )

    # A service account with the project's owner role that owns no key (yet).
    org.add_service_account(
        project.id,
        "deploy-owner-bot",
        id=OWNER_SERVICE_ACCOUNT_ID,
        role="owner",
        created_at=at - 30 * DAY,
    )
    org.add_member(
        "New Hire",
        "new.hire@example.com",
        id=NEW_HIRE_USER_ID,
        role="reader",
        added_at=at - 39 * DAY,
        created_at=at - 39 * DAY,
    )
    org.add_invite(
        "new.hire@example.com",
        id=INVITE_ACCEPTED_ID,
        role="reader",
        created_at=at - 40 * DAY,
        expires_at=at - 33 * DAY,
        accepted_at=at - 39 * DAY,
        projects=(SimInviteProject(project.id, "member"),),
    )
    org.add_invite(
        "ignored.invite@example.com",
        id=INVITE_EXPIRED_ID,
        created_at=at - 20 * DAY,
        expires_at=at - 13 * DAY,
    )
    org.add_invite(
        "pending.owner@example.com",
        id=INVITE_PENDING_SOON_ID,
        role="owner",
        created_at=at - 6 * DAY,
        expires_at=at + DAY,
    )
    org.add_invite(
        "pending.reader@example.com",
        id=INVITE_PENDING_ID,
        role="reader",
        created_at=at - DAY,
        expires_at=at + 6 * DAY,
        projects=(
            SimInviteProject(project.id, "member"),
            SimInviteProject(org.projects()[1].id, "owner"),
        ),
    )

    org.add_certificate(
        "legacy-mtls",
        id=CERTIFICATE_EXPIRED_ID,
        created_at=at - 400 * DAY,
        valid_at=at - 400 * DAY,
        expires_at=at - 3 * DAY,
        active=True,
    )
    org.add_certificate(
        "gateway-mtls-2025",
        id=CERTIFICATE_EXPIRING_ID,
        created_at=at - 340 * DAY,
        valid_at=at - 345 * DAY,
        expires_at=at + 20 * DAY,
        active=True,
    )
    org.add_certificate(
        None,
        id=CERTIFICATE_INACTIVE_ID,
        created_at=at - 90 * DAY,
        valid_at=at - 90 * DAY,
        expires_at=at + 275 * DAY,
        active=False,
    )
    org.add_certificate(
        "gateway-mtls-2026",
        id=CERTIFICATE_FAR_OFF_ID,
        created_at=at - 10 * DAY,
        valid_at=at - 10 * DAY,
        expires_at=at + 720 * DAY,
        active=True,
    )
    _usage_and_spend(org, at, departed)
    org.feed(DemoAuditTimeline(org, at).record_until)
    return org


def _usage_and_spend(org: ScenarioOrganization, at: int, departed: SimUser) -> None:
    """The usage cases on the generated keys of the first project (the projects and keys
    stay today's demo), and the spend limits."""
    project = org.projects()[0]
    members = {m.id for m in org.members()}
    keys = org.keys(project.id)

    # The departed user's pipeline still runs, day and night.
    org.usage.add_series(
        "completions",
        project_id=project.id,
        api_key_id=DEPARTED_KEY_IDS[0],
        user_id=departed.id,
        model="gpt-4o-mini",
        start=at - 300 * DAY,
        rate=40,
        shape=1,
        per_request={"input_tokens": 900, "output_tokens": 300},
    )

    # A member's key unused for 30 to 90 days, used again a minute after the start.
    dormant = next(
        k
        for k in keys
        if isinstance(k.owner, SimUser)
        and k.owner.id in members
        and k.owner_project_access == "active"
        and k.last_used_at is not None
        and 30 * DAY <= at - k.last_used_at < 90 * DAY
    )
    org.dormant_key_id = dormant.id
    woken = at + DORMANT_WAKES_AFTER
    org.at(
        woken,
        lambda o: o.use_key(
            project.id, dormant.id, at=woken, model="gpt-4o", requests=4,
            input_tokens=6_000, output_tokens=1_500,
        ),
    )  # fmt: skip

    # The key with the lightest steady usage bursts to SPIKE_OVER_PEAK times its peak.
    peaks = {k.id: _peak_tokens_per_minute(org, k.id) for k in keys if k.id != dormant.id}
    spiking = min((peak, key_id) for key_id, peak in peaks.items() if peak > 0)[1]
    org.spike_key_id = spiking
    per_minute = SPIKE_OVER_PEAK * peaks[spiking]
    for minute in range(SPIKE_LASTS // 60):
        org.record_usage(
            project.id,
            api_key_id=spiking,
            at=at + SPIKE_STARTS_AFTER + 60 * minute,
            model="gpt-4o-mini",
            requests=60,
            input_tokens=int(per_minute * 4 / 5),
            output_tokens=int(per_minute / 5),
        )
    _spend_limits(org, at)


def _peak_tokens_per_minute(org: Organization, key_id: str) -> float:
    """Input and output tokens per minute of the key's background usage at its busiest."""
    total = 0.0
    for source in USAGE_SOURCES:
        metrics = METRICS[source]
        for series in org.usage.series(source):
            if series.dims[GROUP_FIELDS[source].index("api_key_id")] != key_id:
                continue
            per = dict(zip(metrics, series.per_request, strict=True))
            tokens = per.get("input_tokens", 0) + per.get("output_tokens", 0)
            total += series.rate * tokens / 60
    return total


def _spend_limits(org: Organization, at: int) -> None:
    """Limits against this month's spend at the start (which grows slowly from there)."""
    projects = [p for p in org.projects() if org.project_spend_limit(p.id) is not None]
    # Not the first project: its keys (the departed user's, the dormant and the spiking
    # one) make requests, which an enforcing limit would refuse.
    near, enforcing = projects[1], projects[2]
    # Something spent this month even on its first minutes: the limits are never 0.
    spent_at = max(month_start(at), at - 60)
    for project, usd in ((enforcing, 40), (near, 60)):
        org.record_usage(
            project.id, at=spent_at, model="gpt-4o", requests=50, output_tokens=usd * 100_000
        )
    spent = month_to_date(org, at)

    def cents(dollars: float, percent: float) -> int:
        return max(1, math.ceil(dollars * 100 * 100 / percent))

    for project in projects:
        dollars = spent.get(project.id, 0.0)
        if project is enforcing:  # all of it spent: refused since
            org.set_project_spend_limit(
                project.id, max(1, math.floor(dollars * 100)), enforcing=True
            )
        elif project is near:
            org.set_project_spend_limit(project.id, cents(dollars, NEAR_LIMIT_PERCENT))
        else:
            limit = org.project_spend_limit(project.id)
            assert limit is not None
            floor = cents(dollars, OTHER_PROJECTS_AT_MOST_PERCENT)
            org.set_project_spend_limit(project.id, max(limit.threshold_amount, floor))
    org.set_spend_limit(cents(sum(spent.values()), ORGANIZATION_PERCENT))
