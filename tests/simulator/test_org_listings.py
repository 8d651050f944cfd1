"""The organization-level listings: admin keys, users, invites, certificates, service accounts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from exporter.simulator.app import RecordedRequest, SimulatorState
from exporter.simulator.faults import API_ENDPOINTS, ApiEndpoint
from exporter.simulator.organization import (
    DAY,
    Organization,
    SimAdminKeyOwner,
    SimInviteProject,
    SimServiceAccount,
    redact_admin_key,
)

NOW = 1_800_000_000
ORG = "/v1/organization"
ITEMS = 250

Client = TestClient[web.Request, web.Application]


@dataclass(frozen=True)
class Route:
    endpoint: ApiEndpoint
    path: str
    object: str
    # The order the listing serves by default (certificates: newest first).
    default_desc: bool = False


ROUTES = (
    Route("admin_api_keys", f"{ORG}/admin_api_keys", "organization.admin_api_key"),
    Route("users", f"{ORG}/users", "organization.user"),
    Route("invites", f"{ORG}/invites", "organization.invite"),
    Route("certificates", f"{ORG}/certificates", "organization.certificate", default_desc=True),
    Route(
        "service_accounts",
        f"{ORG}/projects/proj_big/service_accounts",
        "organization.project.service_account",
    ),
)


def _ids(org: Organization, endpoint: ApiEndpoint) -> list[str]:
    """Every id the listing holds, in creation order."""
    if endpoint == "admin_api_keys":
        return [k.id for k in org.admin_keys()]
    if endpoint == "users":
        return [m.id for m in org.members()]
    if endpoint == "invites":
        return [i.id for i in org.invites()]
    if endpoint == "certificates":
        return [c.id for c in org.certificates()]
    return [a.id for a in org.service_accounts("proj_big")]


@pytest.fixture
def big_org(state: SimulatorState) -> Organization:
    """250 of everything, so that a listing at limit=100 takes three pages."""
    org = Organization(seed=5, now=NOW)
    org.add_project("big", id="proj_big")
    org.add_project("small", id="proj_small")
    for i in range(ITEMS):
        org.add_admin_key(f"admin {i}", created_at=NOW - (ITEMS - i) * DAY)
        org.add_member(f"User {i}", f"user{i}@example.com", added_at=NOW - i)
        org.add_invite(f"invitee{i}@example.com", created_at=NOW - i)
        org.add_certificate(f"cert {i}", created_at=NOW - (ITEMS - i), expires_at=NOW + DAY)
        org.add_service_account("proj_big", f"bot {i}", created_at=NOW - i)
    org.add_service_account("proj_small", "lonely bot", id="svc_acct_lonely")
    state.org = org
    return org


async def _get(client: Client, path: str, **query: str) -> tuple[int, Any]:
    async with client.get(path, params=query) as response:
        return response.status, await response.json()


async def _walk(client: Client, path: str, **query: str) -> list[dict[str, Any]]:
    pages: list[dict[str, Any]] = []
    after: dict[str, str] = {}
    while True:
        status, body = await _get(client, path, **query, **after)
        assert status == 200, body
        pages.append(body)
        if not body["has_more"]:
            return pages
        after = {"after": body["last_id"]}


def test_api_endpoints_name_every_listing() -> None:
    assert {"projects", "api_keys"} | {r.endpoint for r in ROUTES} <= set(API_ENDPOINTS)


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.endpoint)
async def test_250_items_take_three_pages_at_limit_100(
    client: Client, state: SimulatorState, big_org: Organization, route: Route
) -> None:
    pages = await _walk(client, route.path, limit="100")
    assert [len(p["data"]) for p in pages] == [100, 100, 50]
    assert [p["has_more"] for p in pages] == [True, True, False]
    for page in pages:
        assert page["object"] == "list"
        assert page["first_id"] == page["data"][0]["id"]
        assert page["last_id"] == page["data"][-1]["id"]
        assert {item["object"] for item in page["data"]} == {route.object}
    served = [item["id"] for page in pages for item in page["data"]]
    expected = _ids(big_org, route.endpoint)
    assert served == (expected[::-1] if route.default_desc else expected)
    assert state.request_count(route.endpoint) == 3
    assert all(r.endpoint == route.endpoint for r in state.requests)


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.endpoint)
async def test_cursor_continues_after_the_named_item(
    client: Client, big_org: Organization, route: Route
) -> None:
    status, first = await _get(client, route.path, limit="7")
    assert status == 200
    status, second = await _get(client, route.path, limit="3", after=first["data"][3]["id"])
    assert status == 200
    assert [i["id"] for i in second["data"]] == [i["id"] for i in first["data"][4:7]]
    assert second["has_more"] is True


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.endpoint)
async def test_default_limit_is_20(client: Client, big_org: Organization, route: Route) -> None:
    status, body = await _get(client, route.path)
    assert status == 200
    assert len(body["data"]) == 20
    assert body["has_more"] is True


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.endpoint)
@pytest.mark.parametrize(
    ("query", "param", "code"),
    [
        ({"limit": "0"}, "limit", "integer_below_min_value"),
        ({"limit": "101"}, "limit", "integer_above_max_value"),
        ({"limit": "many"}, "limit", "invalid_type"),
        ({"after": "never_existed"}, "after", None),
    ],
)
async def test_bad_limit_and_unknown_cursor_answer_400(
    client: Client,
    big_org: Organization,
    route: Route,
    query: dict[str, str],
    param: str,
    code: str | None,
) -> None:
    status, body = await _get(client, route.path, **query)
    assert status == 400
    assert body["error"]["type"] == "invalid_request_error"
    assert body["error"]["param"] == param
    assert body["error"]["code"] == code


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.endpoint)
@pytest.mark.parametrize("limit", ["1", "100"])
async def test_limit_bounds_are_inclusive(
    client: Client, big_org: Organization, route: Route, limit: str
) -> None:
    status, body = await _get(client, route.path, limit=limit)
    assert status == 200
    assert len(body["data"]) == int(limit)


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.endpoint)
@pytest.mark.parametrize(
    ("header", "code"),
    [(None, None), ("Bearer sk-proj-test-fake", "invalid_api_key"), ("Basic x", None)],
)
async def test_admin_key_required(
    client: Client, big_org: Organization, route: Route, header: str | None, code: str | None
) -> None:
    headers = {"Authorization": header or ""}
    async with client.get(route.path, headers=headers) as response:
        assert response.status == 401
        assert (await response.json())["error"]["code"] == code


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.endpoint)
async def test_only_accepted_admin_keys_pass(
    client: Client, state: SimulatorState, big_org: Organization, route: Route
) -> None:
    state.accepted_admin_keys = {"sk-admin-test-other"}
    status, _ = await _get(client, route.path)
    assert status == 401
    state.accepted_admin_keys = {"sk-admin-test-fake"}
    status, _ = await _get(client, route.path)
    assert status == 200


@pytest.mark.parametrize(
    ("path", "default_desc"),
    [(f"{ORG}/admin_api_keys", False), (f"{ORG}/certificates", True)],
)
async def test_order_asc_and_desc(
    client: Client, big_org: Organization, path: str, default_desc: bool
) -> None:
    asc = [i["id"] for p in await _walk(client, path, limit="100", order="asc") for i in p["data"]]
    desc = [
        i["id"] for p in await _walk(client, path, limit="100", order="desc") for i in p["data"]
    ]
    default = [i["id"] for p in await _walk(client, path, limit="100") for i in p["data"]]
    assert len(asc) == ITEMS
    assert desc == asc[::-1]
    assert default == (desc if default_desc else asc)
    created = {
        i["id"]: i["created_at"] for p in await _walk(client, path, limit="100") for i in p["data"]
    }
    assert [created[i] for i in asc] == sorted(created.values())
    status, body = await _get(client, path, order="newest")
    assert status == 400
    assert (body["error"]["param"], body["error"]["code"]) == ("order", "invalid_value")


async def test_admin_keys_serve_only_the_redacted_value(
    client: Client, state: SimulatorState
) -> None:
    org = Organization(now=NOW)
    owner = SimAdminKeyOwner(
        id="svc_acct_test", name="robot", created_at=NOW, role="member", type="service_account"
    )
    org.add_admin_key(
        "test key",
        id="key_test",
        value="sk-admin-test-secretvalue-xyz",
        created_at=NOW - DAY,
        expires_at=NOW + DAY,
        last_used_at=NOW,
        owner=owner,
    )
    org.add_admin_key(None, id="key_test2", value="sk-admin-test-other-abc", created_at=NOW)
    state.org = org
    async with client.get(f"{ORG}/admin_api_keys") as response:
        raw = await response.text()
        body = await response.json()
    assert "secretvalue" not in raw
    first, second = body["data"]
    assert first == {
        "object": "organization.admin_api_key",
        "id": "key_test",
        "name": "test key",
        "redacted_value": "sk-admin...xyz",
        "created_at": NOW - DAY,
        "expires_at": NOW + DAY,
        "last_used_at": NOW,
        "owner": {
            "type": "service_account",
            "object": "organization.service_account",
            "id": "svc_acct_test",
            "name": "robot",
            "created_at": NOW,
            "role": "member",
        },
    }
    assert second["name"] is None
    assert second["expires_at"] is None
    assert second["last_used_at"] is None
    assert second["redacted_value"] == redact_admin_key("sk-admin-test-other-abc")
    assert second["owner"]["type"] == "user"
    assert second["owner"]["object"] == "organization.user"


def test_redaction_keeps_the_prefix_and_the_last_three() -> None:
    assert redact_admin_key("sk-admin-demo-simulated") == "sk-admin...ted"
    value = "sk-admin-test-0123456789"
    prefix, _, suffix = redact_admin_key(value).partition("...")
    assert value.startswith(prefix)
    assert value.endswith(suffix)
    assert len(suffix) == 3


async def test_users_listing_and_email_filter(client: Client, state: SimulatorState) -> None:
    org = Organization(now=NOW)
    org.add_member("Ada", "ada@example.com", id="user-ada", role="owner", added_at=NOW - 5)
    org.add_member(
        "Bob", "bob@example.com", id="user-bob", added_at=NOW, api_key_last_used_at=NOW - 9
    )
    org.add_member("Cy", "cy@example.com", id="user-cy", role="member", added_at=NOW)
    org.remove_member("user-cy")
    state.org = org
    pages = await _walk(client, f"{ORG}/users")
    users = pages[0]["data"]
    assert [u["id"] for u in users] == ["user-ada", "user-bob"]
    assert users[0]["role"] == "owner"
    assert users[0]["api_key_last_used_at"] is None
    assert users[1]["api_key_last_used_at"] == NOW - 9
    assert users[1]["role"] == "reader"
    assert users[1]["user"]["id"] == "user-bob"
    assert users[1]["is_service_account"] is False
    async with client.get(f"{ORG}/users?emails=bob@example.com&emails=cy@example.com") as r:
        assert [u["id"] for u in (await r.json())["data"]] == ["user-bob"]


async def test_invite_status_follows_its_times(client: Client, state: SimulatorState) -> None:
    org = Organization(now=NOW)
    org.add_invite("p@example.com", id="invite-p", created_at=NOW - DAY)
    org.add_invite("e@example.com", id="invite-e", created_at=NOW - 30 * DAY)
    org.add_invite(
        "a@example.com",
        id="invite-a",
        role="owner",
        created_at=NOW - 30 * DAY,
        accepted_at=NOW - 29 * DAY,
        projects=(SimInviteProject("proj_x", "owner"),),
    )
    org.delete_invite("invite-e")
    org.add_invite("e2@example.com", id="invite-e2", created_at=NOW - 8 * DAY)
    state.org = org
    _, body = await _get(client, f"{ORG}/invites")
    by_id = {i["id"]: i for i in body["data"]}
    assert list(by_id) == ["invite-p", "invite-a", "invite-e2"]
    assert by_id["invite-p"]["status"] == "pending"
    assert by_id["invite-p"]["expires_at"] == NOW + 6 * DAY
    assert by_id["invite-p"]["accepted_at"] is None
    assert by_id["invite-p"]["projects"] == []
    assert by_id["invite-a"]["status"] == "accepted"
    assert by_id["invite-a"]["projects"] == [{"id": "proj_x", "role": "owner"}]
    assert by_id["invite-e2"]["status"] == "expired"


async def test_certificate_shape(client: Client, state: SimulatorState) -> None:
    org = Organization(now=NOW)
    org.add_certificate(
        None, id="cert_test", created_at=NOW, valid_at=NOW - 5, expires_at=NOW + 9, active=False
    )
    org.add_certificate("gone", id="cert_gone", expires_at=NOW)
    org.delete_certificate("cert_gone")
    state.org = org
    _, body = await _get(client, f"{ORG}/certificates")
    assert body["data"] == [
        {
            "object": "organization.certificate",
            "id": "cert_test",
            "name": None,
            "created_at": NOW,
            "active": False,
            "certificate_details": {"valid_at": NOW - 5, "expires_at": NOW + 9},
        }
    ]


async def test_service_accounts_include_key_owners(client: Client, state: SimulatorState) -> None:
    org = Organization(now=NOW)
    project = org.add_project("p", id="proj_p")
    other = org.add_project("q", id="proj_q")
    bot = SimServiceAccount(id="svc_acct_bot", name="bot", role="member", created_at=NOW)
    org.add_service_account(project.id, "idle", id="svc_acct_idle", role="owner", created_at=NOW)
    org.add_key(project.id, "k1", created_at=NOW, owner=bot)
    org.add_key(project.id, "k2", created_at=NOW, owner=bot)
    org.add_key(other.id, "k3", created_at=NOW)
    state.org = org
    _, body = await _get(client, f"{ORG}/projects/proj_p/service_accounts")
    assert body["data"] == [
        {
            "object": "organization.project.service_account",
            "id": "svc_acct_idle",
            "name": "idle",
            "role": "owner",
            "created_at": NOW,
        },
        {
            "object": "organization.project.service_account",
            "id": "svc_acct_bot",
            "name": "bot",
            "role": "member",
            "created_at": NOW,
        },
    ]
    _, body = await _get(client, f"{ORG}/projects/proj_q/service_accounts")
    assert body["data"] == []
    org.remove_service_account(project.id, "svc_acct_idle")
    _, body = await _get(client, f"{ORG}/projects/proj_p/service_accounts")
    assert [a["id"] for a in body["data"]] == ["svc_acct_bot"]


async def test_service_accounts_of_unknown_and_archived_projects(
    client: Client, state: SimulatorState, big_org: Organization
) -> None:
    status, body = await _get(client, f"{ORG}/projects/proj_missing/service_accounts")
    assert status == 404
    assert "proj_missing" in body["error"]["message"]
    assert body["error"]["type"] == "invalid_request_error"
    big_org.archive_project("proj_small")
    status, body = await _get(client, f"{ORG}/projects/proj_small/service_accounts")
    assert status == 400
    assert body["error"]["param"] == "project_id"
    assert "archived" in body["error"]["message"]
    # Key listings of an archived project still answer.
    status, _ = await _get(client, f"{ORG}/projects/proj_small/api_keys")
    assert status == 200
    assert [r.status for r in state.requests] == [404, 400, 200]
    assert [r.endpoint for r in state.requests] == [
        "service_accounts",
        "service_accounts",
        "api_keys",
    ]


async def test_project_deleted_mid_listing_answers_404(
    client: Client, big_org: Organization
) -> None:
    path = f"{ORG}/projects/proj_big/service_accounts"
    status, first = await _get(client, path, limit="100")
    assert status == 200
    big_org.delete_project("proj_big")
    status, _ = await _get(client, path, after=first["last_id"])
    assert status == 404


async def test_deleted_item_is_gone_and_its_cursor_refused(
    client: Client, big_org: Organization
) -> None:
    first = big_org.admin_keys()[0]
    big_org.delete_admin_key(first.id)
    _, body = await _get(client, f"{ORG}/admin_api_keys", limit="100")
    assert first.id not in [k["id"] for k in body["data"]]
    status, _ = await _get(client, f"{ORG}/admin_api_keys", after=first.id)
    assert status == 400


async def test_requests_are_recorded_per_endpoint(
    client: Client, state: SimulatorState, big_org: Organization
) -> None:
    for route in ROUTES:
        await _get(client, route.path, limit="1")
    assert state.requests == [
        RecordedRequest(route.endpoint, route.path, {"limit": "1"}, 200) for route in ROUTES
    ]
    assert all(state.request_count(route.endpoint) == 1 for route in ROUTES)
