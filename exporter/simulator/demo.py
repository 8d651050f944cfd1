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
  with the owner role in the first project.
"""

from __future__ import annotations

import time
from dataclasses import replace

from exporter.simulator.organization import (
    ADMIN_KEY_VISIBLE_SUFFIX,
    DAY,
    Organization,
    OrganizationSpec,
    SimAdminKeyOwner,
    SimInviteProject,
    SimUser,
    build_organization,
)

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

# Tails of the other admin keys' values; one that equals the demo key's own tail is skipped,
# so only the demo key's redacted value matches the key the exporter holds.
_TAILS = ("x1q", "y2r", "z3s", "w4t", "v5u", "u6v", "t7w")


def demo_organization(admin_key: str, *, now: int | None = None) -> Organization:
    """The demo organization; `admin_key` is the key the demo exporter sends."""
    at = int(time.time()) if now is None else now
    org = build_organization(replace(DEMO_SPEC, now=at))
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
    return org
