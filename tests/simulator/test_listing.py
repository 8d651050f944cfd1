"""The list endpoints as the exporter uses them: paging, filters, parameter checks, recording."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from exporter.simulator.app import RecordedRequest, SimulatorState
from exporter.simulator.organization import Organization, SimServiceAccount, SimUser

NOW = 1_800_000_000
PROJECTS = "/v1/organization/projects"

Client = TestClient[web.Request, web.Application]


def _keys_url(project_id: str) -> str:
    return f"{PROJECTS}/{project_id}/api_keys"


async def _get(client: Client, path: str, **query: str) -> tuple[int, Any]:
    async with client.get(path, params=query) as response:
        return response.status, await response.json()


async def _collect(client: Client, path: str, **query: str) -> list[dict[str, Any]]:
    """Follow the cursor the way the exporter does, checking each envelope on the way."""
    items: list[dict[str, Any]] = []
    after: dict[str, str] = {}
    while True:
        status, body = await _get(client, path, **query, **after)
        assert status == 200
        assert body["object"] == "list"
        data = body["data"]
        assert body["first_id"] == (data[0]["id"] if data else None)
        assert body["last_id"] == (data[-1]["id"] if data else None)
        items += data
        if not body["has_more"]:
            return items
        after = {"after": body["last_id"]}


@pytest.fixture
def big_project(state: SimulatorState) -> str:
    """A project with 250 keys, more than two full pages of 100."""
    org = Organization(seed=11, now=NOW)
    project = org.add_project("big")
    for i in range(250):
        org.add_key(project.id, f"k{i}", created_at=NOW - i)
    state.org = org
    return project.id


async def test_paging_over_more_than_100_keys(
    client: Client, state: SimulatorState, big_project: str
) -> None:
    pages = []
    after: dict[str, str] = {}
    while True:
        status, body = await _get(client, _keys_url(big_project), limit="100", **after)
        assert status == 200
        pages.append(body)
        if not body["has_more"]:
            break
        after = {"after": body["last_id"]}
    assert [len(p["data"]) for p in pages] == [100, 100, 50]
    assert [p["has_more"] for p in pages] == [True, True, False]
    served = [k["id"] for p in pages for k in p["data"]]
    assert served == [k.id for k in state.org.keys(big_project)]
    assert state.request_count("api_keys") == 3


async def test_default_limit_is_20(client: Client, big_project: str) -> None:
    status, body = await _get(client, _keys_url(big_project))
    assert status == 200
    assert len(body["data"]) == 20
    assert body["has_more"] is True


async def test_exact_multiple_of_limit_ends_without_more(
    client: Client, state: SimulatorState
) -> None:
    org = Organization(now=NOW)
    project = org.add_project("p")
    for i in range(4):
        org.add_key(project.id, str(i), created_at=NOW)
    state.org = org
    _, first = await _get(client, _keys_url(project.id), limit="2")
    _, second = await _get(client, _keys_url(project.id), limit="2", after=first["last_id"])
    assert first["has_more"] is True
    assert second["has_more"] is False
    assert len(second["data"]) == 2


async def test_empty_list_has_null_cursors(client: Client, state: SimulatorState) -> None:
    state.org = Organization(now=NOW)
    status, body = await _get(client, PROJECTS)
    assert status == 200
    assert body == {
        "object": "list",
        "data": [],
        "first_id": None,
        "last_id": None,
        "has_more": False,
    }


@pytest.fixture
def archived_org(state: SimulatorState) -> Organization:
    org = Organization(now=NOW)
    org.add_project("live", id="proj_live")
    org.add_project("old", id="proj_old", archived=True, created_at=NOW - 10)
    org.add_project("live2", id="proj_live2")
    state.org = org
    return org


async def test_archived_projects_only_with_include_archived(
    client: Client, archived_org: Organization
) -> None:
    assert [p["id"] for p in await _collect(client, PROJECTS)] == ["proj_live", "proj_live2"]
    assert [p["id"] for p in await _collect(client, PROJECTS, include_archived="false")] == [
        "proj_live",
        "proj_live2",
    ]
    everything = await _collect(client, PROJECTS, include_archived="true")
    assert [p["id"] for p in everything] == ["proj_live", "proj_old", "proj_live2"]
    assert everything[1]["status"] == "archived"
    assert everything[1]["archived_at"] == NOW
    assert everything[0]["archived_at"] is None


async def test_paging_projects_with_a_page_of_one(
    client: Client, archived_org: Organization
) -> None:
    served = await _collect(client, PROJECTS, limit="1", include_archived="true")
    assert [p["id"] for p in served] == ["proj_live", "proj_old", "proj_live2"]


@pytest.fixture
def mixed_access_project(state: SimulatorState) -> str:
    org = Organization(now=NOW)
    project = org.add_project("p", id="proj_mixed")
    bot = SimServiceAccount(id="svc_acct_bot", name="bot", role="member", created_at=NOW)
    org.add_key(project.id, "a", id="key_active", created_at=NOW)
    org.add_key(project.id, "i", id="key_gone", created_at=NOW, owner_project_access="inactive")
    org.add_key(project.id, "s", id="key_bot", created_at=NOW, owner=bot)
    state.org = org
    return project.id


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({}, ["key_active", "key_bot"]),  # membership visibility hides inactive owners
        ({"owner_project_access": "active"}, ["key_active", "key_bot"]),
        ({"owner_project_access": "inactive"}, ["key_gone"]),
        ({"owner_project_access": "any"}, ["key_active", "key_gone", "key_bot"]),
    ],
)
async def test_owner_project_access(
    client: Client, mixed_access_project: str, query: dict[str, str], expected: list[str]
) -> None:
    served = await _collect(client, _keys_url(mixed_access_project), **query)
    assert [k["id"] for k in served] == expected


async def test_owners_are_nested_by_type(client: Client, mixed_access_project: str) -> None:
    served = await _collect(client, _keys_url(mixed_access_project), owner_project_access="any")
    by_id = {k["id"]: k for k in served}
    assert by_id["key_bot"]["owner"] == {
        "type": "service_account",
        "service_account": {
            "id": "svc_acct_bot",
            "name": "bot",
            "created_at": NOW,
            "role": "member",
        },
    }
    user_owner = by_id["key_active"]["owner"]
    assert user_owner["type"] == "user"
    assert set(user_owner["user"]) == {"id", "email", "name", "created_at", "role"}
    assert by_id["key_gone"]["owner_project_access"] == "inactive"
    assert by_id["key_active"]["last_used_at"] is None


@pytest.mark.parametrize(
    ("query", "param", "code"),
    [
        ({"limit": "0"}, "limit", "integer_below_min_value"),
        ({"limit": "-3"}, "limit", "integer_below_min_value"),
        ({"limit": "101"}, "limit", "integer_above_max_value"),
        ({"limit": "ten"}, "limit", "invalid_type"),
        ({"limit": "1.5"}, "limit", "invalid_type"),
        ({"limit": ""}, "limit", "invalid_type"),
        ({"owner_project_access": "all"}, "owner_project_access", "invalid_value"),
        ({"after": "key_never_existed"}, "after", None),
    ],
)
async def test_bad_parameters_answer_400(
    client: Client,
    mixed_access_project: str,
    query: dict[str, str],
    param: str,
    code: str | None,
) -> None:
    status, body = await _get(client, _keys_url(mixed_access_project), **query)
    assert status == 400
    assert body["error"]["type"] == "invalid_request_error"
    assert body["error"]["param"] == param
    assert body["error"]["code"] == code


@pytest.mark.parametrize("limit", ["1", "100"])
async def test_limit_bounds_are_inclusive(
    client: Client, mixed_access_project: str, limit: str
) -> None:
    status, _ = await _get(client, _keys_url(mixed_access_project), limit=limit)
    assert status == 200


async def test_bad_include_archived_answers_400(client: Client) -> None:
    status, body = await _get(client, PROJECTS, include_archived="yes")
    assert status == 400
    assert body["error"]["param"] == "include_archived"


async def test_unknown_project_answers_404(client: Client) -> None:
    for path in (_keys_url("proj_missing"), f"{PROJECTS}/proj_missing"):
        status, body = await _get(client, path)
        assert status == 404
        assert body["error"]["type"] == "invalid_request_error"
        assert "proj_missing" in body["error"]["message"]


async def test_project_deleted_mid_listing_answers_404(
    client: Client, state: SimulatorState, big_project: str
) -> None:
    status, first = await _get(client, _keys_url(big_project), limit="100")
    assert status == 200
    state.org.delete_project(big_project)
    status, _ = await _get(client, _keys_url(big_project), after=first["last_id"])
    assert status == 404


async def test_key_deleted_between_scrapes_is_gone(
    client: Client, state: SimulatorState, mixed_access_project: str
) -> None:
    state.org.delete_key(mixed_access_project, "key_bot")
    served = await _collect(client, _keys_url(mixed_access_project), owner_project_access="any")
    assert "key_bot" not in [k["id"] for k in served]


async def test_retrieve_project(client: Client, archived_org: Organization) -> None:
    status, body = await _get(client, f"{PROJECTS}/proj_old")
    assert status == 200
    assert body == {
        "id": "proj_old",
        "object": "organization.project",
        "name": "old",
        "created_at": NOW - 10,
        "archived_at": NOW,
        "status": "archived",
    }


async def test_awkward_names_round_trip(client: Client, state: SimulatorState) -> None:
    org = Organization(now=NOW)
    name = 'q"uote \\back\\slash\nnew line 🚀 Проект 数据'
    owner = SimUser(id="user-x", name=name, email="x@example.com", role="owner", created_at=NOW)
    project = org.add_project(name)
    org.add_key(project.id, name, created_at=NOW, owner=owner)
    state.org = org
    async with client.get(_keys_url(project.id)) as response:
        assert response.charset == "utf-8"
        raw = await response.read()
        key = (await response.json())["data"][0]
    # Sent as UTF-8, not \u escapes, as a real server may.
    assert "🚀".encode() in raw
    assert key["name"] == name
    assert key["owner"]["user"]["name"] == name
    assert (await _collect(client, PROJECTS))[0]["name"] == name


async def test_unknown_url_and_method_answer_like_the_api(client: Client) -> None:
    status, body = await _get(client, "/v1/organization/nothing")
    assert status == 404
    assert body["error"]["message"] == "Invalid URL (GET /v1/organization/nothing)."
    async with client.post(PROJECTS) as response:
        assert response.status == 405
        assert "Invalid method" in (await response.json())["error"]["message"]


async def test_every_request_is_recorded(
    client: Client, state: SimulatorState, mixed_access_project: str
) -> None:
    await _get(client, PROJECTS, limit="5")
    await _get(client, _keys_url(mixed_access_project), owner_project_access="any")
    await _get(client, _keys_url("proj_missing"))
    await _get(client, f"{PROJECTS}/{mixed_access_project}")
    await _get(client, "/v1/elsewhere")
    async with client.get(PROJECTS, headers={"Authorization": "Bearer sk-proj-nope"}):
        pass
    assert state.requests == [
        RecordedRequest("projects", PROJECTS, {"limit": "5"}, 200),
        RecordedRequest(
            "api_keys", _keys_url(mixed_access_project), {"owner_project_access": "any"}, 200
        ),
        RecordedRequest("api_keys", _keys_url("proj_missing"), {}, 404),
        RecordedRequest("other", f"{PROJECTS}/{mixed_access_project}", {}, 200),
        RecordedRequest("other", "/v1/elsewhere", {}, 404),
        RecordedRequest("projects", PROJECTS, {}, 401),
    ]
    assert state.request_count() == 6
    assert state.request_count("api_keys") == 2
