"""The demo organization, as served: every deliberate case an alert or panel needs."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from exporter.simulator import demo, demo_audit
from exporter.simulator.app import SimulatorState, create_simulator_app
from exporter.simulator.audit import AuditQuery, SimAuditEvent
from exporter.simulator.organization import DAY, OrganizationSpec, build_organization

NOW = 1_800_000_000
DEMO_KEY = "sk-admin-test-demo-simulated"
ORG = "/v1/organization"

Client = TestClient[web.Request, web.Application]


@pytest.fixture
async def demo_client(aiohttp_client: AiohttpClient) -> Client:
    state = SimulatorState(org=demo.demo_organization(DEMO_KEY, now=NOW))
    return await aiohttp_client(
        create_simulator_app(state), headers={"Authorization": f"Bearer {DEMO_KEY}"}
    )


async def _all(client: Client, path: str, **query: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    after: dict[str, str] = {}
    while True:
        async with client.get(path, params={"limit": "100", **query, **after}) as response:
            assert response.status == 200
            body = await response.json()
        items += body["data"]
        if not body["has_more"]:
            return items
        after = {"after": body["last_id"]}


async def _by_id(client: Client, path: str) -> dict[str, dict[str, Any]]:
    return {item["id"]: item for item in await _all(client, path)}


def test_projects_and_keys_are_todays_demo_plus_the_departed_users_keys() -> None:
    today = build_organization(OrganizationSpec(seed=7, projects=8, keys_per_project=6, now=NOW))
    org = demo.demo_organization(DEMO_KEY, now=NOW)
    projects = org.projects(include_archived=True)
    assert [asdict(p) for p in projects] == [
        asdict(p) for p in today.projects(include_archived=True)
    ]
    for project in projects:
        keys = [asdict(k) for k in org.keys(project.id)]
        extra = [k for k in keys if k["id"] in demo.DEPARTED_KEY_IDS]
        assert [k for k in keys if k not in extra] == [asdict(k) for k in today.keys(project.id)]
    assert org.key_count() == today.key_count() + 2


def test_same_arguments_same_organization() -> None:
    def fingerprint() -> str:
        org = demo.demo_organization(DEMO_KEY, now=NOW)
        return json.dumps(
            [asdict(k) for k in org.admin_keys()]
            + [asdict(m) for m in org.members()]
            + [asdict(i) for i in org.invites()]
            + [asdict(c) for c in org.certificates()],
            sort_keys=True,
        )

    assert fingerprint() == fingerprint()


async def test_admin_keys(demo_client: Client) -> None:
    keys = await _by_id(demo_client, f"{ORG}/admin_api_keys")
    own = keys[demo.OWN_ADMIN_KEY_ID]
    # The exporter finds its own key: prefix and suffix of the redacted value match it.
    prefix, _, suffix = own["redacted_value"].partition("...")
    assert DEMO_KEY.startswith(prefix)
    assert DEMO_KEY.endswith(suffix)
    assert own["redacted_value"] == "sk-admin...ted"
    matching = [
        k
        for k in keys.values()
        if DEMO_KEY.startswith(k["redacted_value"].partition("...")[0])
        and DEMO_KEY.endswith(k["redacted_value"].partition("...")[2])
    ]
    assert matching == [own]
    assert DEMO_KEY not in json.dumps(keys)
    assert 0 < own["expires_at"] - NOW <= 7 * DAY

    expiring = keys[demo.ADMIN_KEY_EXPIRING_14_DAYS_ID]["expires_at"]
    assert 7 * DAY < expiring - NOW <= 14 * DAY
    assert keys[demo.ADMIN_KEY_NEVER_EXPIRES_ID]["expires_at"] is None
    idle = keys[demo.ADMIN_KEY_IDLE_ID]
    assert NOW - idle["last_used_at"] > 30 * DAY
    never_used = keys[demo.ADMIN_KEY_NEVER_USED_ID]
    assert never_used["last_used_at"] is None
    assert NOW - never_used["created_at"] > 7 * DAY
    assert never_used["name"] is None
    old = keys[demo.ADMIN_KEY_OLD_ID]
    assert NOW - old["created_at"] > 180 * DAY
    assert {k["owner"]["type"] for k in keys.values()} == {"user", "service_account"}
    # The short expiries are the only ones within 14 days.
    soon = {i for i, k in keys.items() if k["expires_at"] and k["expires_at"] - NOW <= 14 * DAY}
    assert soon == {demo.OWN_ADMIN_KEY_ID, demo.ADMIN_KEY_EXPIRING_14_DAYS_ID}


async def test_a_user_who_left_still_owns_keys(demo_client: Client) -> None:
    users = await _by_id(demo_client, f"{ORG}/users")
    projects = await _all(demo_client, f"{ORG}/projects", include_archived="true")
    owners: dict[str, list[str]] = {}
    for project in projects:
        for key in await _all(
            demo_client, f"{ORG}/projects/{project['id']}/api_keys", owner_project_access="any"
        ):
            if key["owner"]["type"] == "user":
                owners.setdefault(key["owner"]["user"]["id"], []).append(key["id"])
    departed = {uid: keys for uid, keys in owners.items() if uid not in users}
    assert departed == {demo.DEPARTED_USER.id: list(demo.DEPARTED_KEY_IDS)}
    roles = {u["role"] for u in users.values()}
    assert {"owner", "reader"} <= roles
    assert roles - {"owner", "reader"}  # a role outside the spec's description
    assert demo.NEW_HIRE_USER_ID in users


async def test_invites(demo_client: Client) -> None:
    invites = await _by_id(demo_client, f"{ORG}/invites")
    statuses = {i: v["status"] for i, v in invites.items()}
    assert statuses == {
        demo.INVITE_PENDING_ID: "pending",
        demo.INVITE_PENDING_SOON_ID: "pending",
        demo.INVITE_EXPIRED_ID: "expired",
        demo.INVITE_ACCEPTED_ID: "accepted",
    }
    assert all(v["expires_at"] > NOW for v in invites.values() if v["status"] == "pending")
    assert invites[demo.INVITE_EXPIRED_ID]["expires_at"] < NOW
    assert invites[demo.INVITE_ACCEPTED_ID]["accepted_at"] is not None
    assert invites[demo.INVITE_PENDING_ID]["projects"]


async def test_certificates(demo_client: Client) -> None:
    certificates = await _by_id(demo_client, f"{ORG}/certificates")

    def expires_in(cert_id: str) -> int:
        expires: int = certificates[cert_id]["certificate_details"]["expires_at"]
        return expires - NOW

    assert 0 < expires_in(demo.CERTIFICATE_EXPIRING_ID) <= 30 * DAY
    assert expires_in(demo.CERTIFICATE_EXPIRED_ID) < 0
    assert certificates[demo.CERTIFICATE_EXPIRED_ID]["active"] is True
    assert certificates[demo.CERTIFICATE_INACTIVE_ID]["active"] is False
    assert expires_in(demo.CERTIFICATE_FAR_OFF_ID) > 365 * DAY
    assert len(certificates) == 4


async def test_service_accounts_in_several_projects(demo_client: Client) -> None:
    projects = await _all(demo_client, f"{ORG}/projects")
    with_accounts = 0
    for project in projects:
        accounts = await _all(demo_client, f"{ORG}/projects/{project['id']}/service_accounts")
        keys = await _all(
            demo_client, f"{ORG}/projects/{project['id']}/api_keys", owner_project_access="any"
        )
        key_owners = {
            k["owner"]["service_account"]["id"]
            for k in keys
            if k["owner"]["type"] == "service_account"
        }
        assert key_owners <= {a["id"] for a in accounts}
        with_accounts += bool(accounts)
    assert with_accounts >= 3
    first = await _all(demo_client, f"{ORG}/projects/{projects[0]['id']}/service_accounts")
    owner_bot = next(a for a in first if a["id"] == demo.OWNER_SERVICE_ACCOUNT_ID)
    assert owner_bot["role"] == "owner"


# -- the audit log: a trickle, and a case for each audit alert -------------------


def _on_clock(at: float) -> tuple[demo.ScenarioOrganization, list[float]]:
    clock = [at]
    return demo.demo_organization(DEMO_KEY, now=NOW, clock=lambda: clock[0]), clock


def _read(org: demo.ScenarioOrganization) -> list[SimAuditEvent]:
    """What a poll sees: the listing advances the scenario, as the route does."""
    org.page_audit_events(AuditQuery(), limit=1)
    return org.audit_events()


def _most_in_window(times: list[int], window: int) -> int:
    times = sorted(times)
    return max((sum(1 for t in times if s <= t < s + window) for s in times), default=0)


def test_the_demo_starts_with_history_and_records_nothing_ahead_of_the_clock() -> None:
    org, clock = _on_clock(NOW)
    history = _read(org)
    assert history
    assert all(NOW - 7 * DAY <= e.effective_at <= NOW for e in history)
    for seconds in (10, 60, 95, 250, 1_000):
        clock[0] = NOW + seconds
        assert max(e.effective_at for e in _read(org)) <= NOW + seconds
    assert org.pending() == []  # the trickle is no step: the timed steps are all done


def test_each_audit_alert_has_its_case_in_the_first_minute() -> None:
    org, _ = _on_clock(NOW + demo_audit.CASES_END)
    events = [e for e in _read(org) if e.effective_at > NOW]
    # The exporter counts from its first poll, seconds after the start: no case before.
    cases = [e for e in events if e.type != "login.succeeded" and e.type != "login.failed"]
    cases += [e for e in events if e.actor and e.actor.ip_address == demo_audit.FAILING_LOGIN_IP]
    assert len(cases) == 2 + demo_audit.BURST_KEYS + demo_audit.LOGIN_FAILURES + 2
    assert min(e.effective_at for e in cases) == NOW + demo_audit.CASES_START

    def of(event_type: str) -> list[SimAuditEvent]:
        return [e for e in events if e.type == event_type]

    created = of("api_key.created")
    assert _most_in_window([e.effective_at for e in created], 3_600) > 10  # burst
    assert any(e.actor is not None and e.actor.kind == "session" for e in created)
    assert any(e.details["data"]["scopes"] == [] for e in created)  # unrestricted
    assert _most_in_window([e.effective_at for e in of("login.failed")], 900) > 5
    (deactivated,) = of("ip_allowlist.config.deactivated")
    assert deactivated.details["configs"][0]["id"] == demo_audit.ALLOWLIST_CONFIG["id"]
    (updated,) = of("api_key.updated")
    assert updated.details["id"] == demo_audit.SESSION_KEY_ID
    assert "scopes" in updated.details["changes_requested"]


def test_the_trickle_is_steady_and_stays_under_the_alert_thresholds() -> None:
    """After the cases have left the alerts' windows, the trickle alone fires no burst
    and no login-failure alert, yet every kind of event keeps coming."""
    org, _ = _on_clock(NOW + 5 * 3_600)
    later = [e for e in _read(org) if e.effective_at >= NOW + 2 * 3_600]
    per_minute = Counter((e.effective_at - NOW) // 60 for e in later if e.type == "login.succeeded")
    assert len(per_minute) == 3 * 60  # a login every minute
    created = [e.effective_at for e in later if e.type == "api_key.created"]
    assert 0 < _most_in_window(created, 3_600) <= 10
    failed = [e.effective_at for e in later if e.type == "login.failed"]
    assert 0 < _most_in_window(failed, 900) <= 5
    kinds = {e.actor.kind for e in later if e.type == "api_key.created" and e.actor}
    assert kinds == {"session", "service_account_api_key"}
    assert {"api_key.updated", "api_key.deleted"} <= {e.type for e in later}


def test_the_trickle_is_the_same_however_often_it_is_read() -> None:
    def seen(org: demo.ScenarioOrganization) -> list[tuple[str, int, str]]:
        return [(e.type, e.effective_at, json.dumps(e.details)) for e in org.audit_events()]

    polled, clock = _on_clock(NOW)
    for minute in range(1, 91):
        clock[0] = NOW + 60 * minute - 7
        _read(polled)
    clock[0] = NOW + 90 * 60
    _read(polled)
    once, _ = _on_clock(NOW + 90 * 60)
    _read(once)
    assert seen(polled) == seen(once)
