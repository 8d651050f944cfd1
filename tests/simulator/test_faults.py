"""Fault injection: each kind does on the wire what the exporter's fault matrix expects."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from exporter.simulator.app import NO_RESPONSE, USAGE_ENDPOINTS, SimulatorState, serve_simulator
from exporter.simulator.faults import API_ENDPOINTS, ApiEndpoint, Fault, FaultInjector
from exporter.simulator.organization import Organization

Client = TestClient[web.Request, web.Application]
NOW = 1_800_000_000
PROJECTS = "/v1/organization/projects"
AUTH = {"Authorization": "Bearer sk-admin-test-fake"}


def _keys_url(project_id: str) -> str:
    return f"{PROJECTS}/{project_id}/api_keys"


@pytest.fixture
def project_id(state: SimulatorState) -> str:
    """A project of 35 keys; the organization also holds a second, small project."""
    org = Organization(seed=4, now=NOW)
    project = org.add_project("main", id="proj_main")
    for i in range(35):
        org.add_key(project.id, f"k{i}", id=f"key_{i:03d}", created_at=NOW - i)
    other = org.add_project("other", id="proj_other")
    org.add_key(other.id, "only", id="key_other", created_at=NOW)
    state.org = org
    return project.id


async def _status(client: Client, path: str, **query: str) -> int:
    async with client.get(path, params=query) as response:
        await response.read()
        return response.status


# -- the injector's bookkeeping ------------------------------------------


def test_times_counts_matching_requests_only() -> None:
    injector = FaultInjector()
    boom = Fault("status", status=503)
    injector.add(boom, endpoint="api_keys", times=2)
    assert injector.take("projects") is None
    assert injector.take("api_keys", "proj_a") is boom
    assert injector.take("api_keys", "proj_b") is boom
    assert injector.take("api_keys", "proj_a") is None
    assert injector.pending() == 0


def test_times_none_lasts_until_cleared() -> None:
    injector = FaultInjector()
    boom = Fault("reset")
    injector.add(boom, times=None)
    assert all(injector.take("projects") is boom for _ in range(50))
    injector.clear()
    assert injector.take("projects") is None


def test_project_filter_and_oldest_first() -> None:
    injector = FaultInjector()
    targeted, general = Fault("status", status=404), Fault("status", status=500)
    injector.add(targeted, project_id="proj_gone", times=None)
    injector.add(general, endpoint="projects")
    assert injector.take("api_keys", "proj_fine") is None
    assert injector.take("api_keys", "proj_gone") is targeted
    assert injector.take("projects") is general
    assert injector.take("projects") is None
    assert injector.pending() == 1


def test_random_mix_is_reproducible() -> None:
    faults = [Fault("status", status=500), Fault("malformed_json")]

    def run(seed: int) -> list[str | None]:
        injector = FaultInjector()
        injector.set_random(0.5, faults, seed=seed)
        return [getattr(injector.take("api_keys"), "kind", None) for _ in range(200)]

    first = run(9)
    assert first == run(9)
    assert first != run(10)
    hits = sum(kind is not None for kind in first)
    assert 60 < hits < 140
    assert {"status", "malformed_json", None} == set(first)


def test_armed_faults_win_over_the_random_mix_and_clear_stops_both() -> None:
    injector = FaultInjector()
    armed, random_one = Fault("reset"), Fault("status", status=502)
    injector.set_random(1.0, [random_one], seed=1)
    injector.add(armed)
    assert injector.take("projects") is armed
    assert injector.take("projects") is random_one
    injector.clear()
    assert injector.take("projects") is None


@pytest.mark.parametrize(
    "make",
    [
        lambda: Fault("status", status=200),
        lambda: Fault("slow", delay=-1),
        lambda: FaultInjector().add(Fault("reset"), times=0),
        lambda: FaultInjector().set_random(1.5, [Fault("reset")], seed=1),
        lambda: FaultInjector().set_random(0.5, [], seed=1),
    ],
)
def test_nonsense_settings_are_refused(make: Any) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
        make()


# -- on the wire ---------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error_type", "code"),
    [
        (401, "invalid_request_error", "invalid_api_key"),
        (403, "invalid_request_error", None),
        (404, "invalid_request_error", None),
        (500, "server_error", None),
        (502, "server_error", None),
        (503, "server_error", None),
    ],
)
async def test_status_faults_answer_the_api_error_body(
    client: Client,
    state: SimulatorState,
    project_id: str,
    status: int,
    error_type: str,
    code: str | None,
) -> None:
    state.faults.add(Fault("status", status=status))
    async with client.get(_keys_url(project_id)) as response:
        assert response.status == status
        error = (await response.json())["error"]
    assert error["type"] == error_type
    assert error["code"] == code
    assert error["message"]
    assert await _status(client, _keys_url(project_id)) == 200  # spent after once


async def test_403_names_the_missing_scope(client: Client, state: SimulatorState) -> None:
    state.faults.add(Fault("status", status=403))
    async with client.get(PROJECTS) as response:
        assert "api.management.read" in (await response.json())["error"]["message"]


@pytest.mark.parametrize(
    ("retry_after", "retry_after_ms"), [("7", None), (None, 1500), ("2", 2000), (None, None)]
)
async def test_429_carries_the_retry_headers_asked_for(
    client: Client, state: SimulatorState, retry_after: str | None, retry_after_ms: int | None
) -> None:
    state.faults.add(
        Fault("status", status=429, retry_after=retry_after, retry_after_ms=retry_after_ms)
    )
    async with client.get(PROJECTS) as response:
        assert response.status == 429
        assert response.headers.get("Retry-After") == retry_after
        ms = response.headers.get("retry-after-ms")
        assert (int(ms) if ms is not None else None) == retry_after_ms
        assert (await response.json())["error"]["code"] == "rate_limit_exceeded"


async def test_retry_after_is_sent_raw(client: Client, state: SimulatorState) -> None:
    date = "Wed, 21 Oct 2026 07:28:00 GMT"
    state.faults.add(Fault("status", status=503, retry_after=date, message="down for lunch"))
    async with client.get(PROJECTS) as response:
        assert response.headers["Retry-After"] == date
        assert (await response.json())["error"]["message"] == "down for lunch"


async def test_slow_answers_late_but_correctly(
    client: Client, state: SimulatorState, project_id: str
) -> None:
    state.faults.add(Fault("slow", delay=0.3))
    started = time.monotonic()
    async with client.get(_keys_url(project_id)) as response:
        assert response.status == 200
        assert len((await response.json())["data"]) == 20
    assert time.monotonic() - started >= 0.3


async def test_slow_beyond_the_client_timeout_times_out(
    client: Client, state: SimulatorState
) -> None:
    state.faults.add(Fault("slow", delay=5.0))
    with pytest.raises(asyncio.TimeoutError):
        async with client.get(PROJECTS, timeout=aiohttp.ClientTimeout(total=0.2)):
            pass


async def test_latency_delays_every_request(client: Client, state: SimulatorState) -> None:
    state.faults.latency = 0.2
    started = time.monotonic()
    assert await _status(client, PROJECTS) == 200
    assert await _status(client, "/v1/elsewhere") == 404
    assert time.monotonic() - started >= 0.4


@pytest.fixture
async def served(state: SimulatorState, project_id: str) -> AsyncIterator[str]:
    async with serve_simulator(state) as base_url:
        yield base_url


@pytest.fixture
async def fresh_connections() -> AsyncIterator[aiohttp.ClientSession]:
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(connector=connector, headers=AUTH) as session:
        yield session


async def test_serve_simulator_yields_the_base_url(served: str) -> None:
    assert re.fullmatch(r"http://127\.0\.0\.1:[0-9]+/v1", served)


async def test_reset_drops_the_connection_without_a_response(
    served: str, fresh_connections: aiohttp.ClientSession, state: SimulatorState
) -> None:
    # aiohttp's client silently retries an idempotent request once after a
    # dropped connection, so it takes two resets in a row to surface one.
    state.faults.add(Fault("reset"), times=2)
    with pytest.raises(aiohttp.ClientConnectionError):
        async with fresh_connections.get(served + "/organization/projects") as response:
            await response.read()
    assert [r.status for r in state.requests] == [NO_RESPONSE, NO_RESPONSE]
    async with fresh_connections.get(served + "/organization/projects") as response:
        assert response.status == 200


async def test_truncated_body_fails_on_read(
    served: str, fresh_connections: aiohttp.ClientSession, state: SimulatorState
) -> None:
    state.faults.add(Fault("truncated"), endpoint="api_keys")
    async with fresh_connections.get(served + "/organization/projects/proj_main/api_keys") as r:
        assert r.status == 200
        with pytest.raises(aiohttp.ClientPayloadError):
            await r.read()
    assert state.requests[-1].status == 200


async def test_malformed_json(client: Client, state: SimulatorState) -> None:
    state.faults.add(Fault("malformed_json"))
    async with client.get(PROJECTS) as response:
        assert response.status == 200
        assert response.content_type == "application/json"
        text = await response.text()
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)


async def test_wrong_shape_projects_has_data_as_an_object(
    client: Client, state: SimulatorState, project_id: str
) -> None:
    state.faults.add(Fault("wrong_shape"))
    async with client.get(PROJECTS) as response:
        body = await response.json()
    assert response.status == 200
    assert isinstance(body["data"], dict)


async def test_wrong_shape_api_keys_has_string_timestamps(
    client: Client, state: SimulatorState, project_id: str
) -> None:
    state.faults.add(Fault("wrong_shape"))
    async with client.get(_keys_url(project_id)) as response:
        body = await response.json()
    assert body["data"]
    assert all(isinstance(key["created_at"], str) for key in body["data"])


async def test_repeat_cursor_loops_forever_while_armed(
    client: Client, state: SimulatorState, project_id: str
) -> None:
    state.faults.add(Fault("repeat_cursor"), endpoint="api_keys", times=None)
    seen: list[str] = []
    after: dict[str, str] = {}
    for _ in range(5):
        async with client.get(_keys_url(project_id), params={"limit": "10", **after}) as r:
            body = await r.json()
        assert body["has_more"] is True
        seen.append(body["last_id"])
        after = {"after": body["last_id"]}
    assert seen == ["key_009"] * 5
    state.faults.clear()
    async with client.get(_keys_url(project_id), params={"limit": "10", **after}) as r:
        assert (await r.json())["first_id"] == "key_010"


async def test_oversized_page_returns_ten_times_the_limit(
    client: Client, state: SimulatorState, project_id: str
) -> None:
    state.faults.add(Fault("oversized_page"))
    async with client.get(_keys_url(project_id), params={"limit": "3"}) as response:
        body = await response.json()
    assert len(body["data"]) == 30
    assert len({key["id"] for key in body["data"]}) == 30
    assert body["has_more"] is True  # 35 keys: five are left


async def test_oversized_page_pads_a_short_list_with_distinct_items(
    client: Client, state: SimulatorState, project_id: str
) -> None:
    state.faults.add(Fault("oversized_page"))
    async with client.get(_keys_url("proj_other"), params={"limit": "5"}) as response:
        body = await response.json()
    assert len(body["data"]) == 50
    assert len({key["id"] for key in body["data"]}) == 50
    assert body["has_more"] is False


async def test_fault_for_one_project_leaves_the_others_alone(
    client: Client, state: SimulatorState, project_id: str
) -> None:
    state.faults.add(Fault("status", status=500), project_id="proj_other", times=None)
    assert await _status(client, _keys_url(project_id)) == 200
    assert await _status(client, PROJECTS) == 200
    assert await _status(client, _keys_url("proj_other")) == 500
    assert await _status(client, _keys_url("proj_other")) == 500


async def test_faults_come_after_the_bearer_check(client: Client, state: SimulatorState) -> None:
    state.faults.add(Fault("status", status=500))
    async with client.get(PROJECTS, headers={"Authorization": "Bearer sk-proj-x"}) as response:
        assert response.status == 401
    assert await _status(client, PROJECTS) == 500  # still armed


async def test_random_mix_over_http(client: Client, state: SimulatorState) -> None:
    state.faults.set_random(0.5, [Fault("status", status=502)], seed=3)
    statuses = [await _status(client, PROJECTS) for _ in range(40)]
    assert set(statuses) == {200, 502}
    assert [r.status for r in state.requests] == statuses


# -- one endpoint failing, the others untouched ----------------------------

ENDPOINT_PATHS: dict[ApiEndpoint, str] = {
    "projects": PROJECTS,
    "api_keys": _keys_url("proj_main"),
    "admin_api_keys": "/v1/organization/admin_api_keys",
    "users": "/v1/organization/users",
    "invites": "/v1/organization/invites",
    "certificates": "/v1/organization/certificates",
    "service_accounts": f"{PROJECTS}/proj_main/service_accounts",
    **{
        endpoint: f"/v1/organization/usage/{source}?start_time={NOW - 86_400}"
        for source, endpoint in USAGE_ENDPOINTS.items()
    },
    "costs": f"/v1/organization/costs?start_time={NOW - 86_400}",
    "spend_limit": "/v1/organization/spend_limit",
    "project_spend_limit": f"{PROJECTS}/proj_main/spend_limit",
    "spend_alerts": "/v1/organization/spend_alerts",
    "project_spend_alerts": f"{PROJECTS}/proj_main/spend_alerts",
    "rate_limits": f"{PROJECTS}/proj_main/rate_limits",
    "audit_logs": "/v1/organization/audit_logs",
}


def test_every_list_endpoint_has_a_path_here() -> None:
    assert set(ENDPOINT_PATHS) == set(API_ENDPOINTS)


@pytest.fixture
def full_org(state: SimulatorState, project_id: str) -> Organization:
    org = state.org
    org.add_admin_key("admin", created_at=NOW)
    org.add_member("Ada", "ada@example.com", added_at=NOW)
    org.add_invite("new@example.com", created_at=NOW)
    org.add_certificate("cert", created_at=NOW, expires_at=NOW + 9)
    org.add_service_account(project_id, "bot", created_at=NOW)
    org.add_service_account("proj_other", "other bot", created_at=NOW)
    org.set_spend_limit(100_000)
    org.set_project_spend_limit(project_id, 10_000)
    return org


@pytest.mark.parametrize("failing", API_ENDPOINTS)
async def test_a_fault_on_one_endpoint_leaves_the_others_alone(
    client: Client, state: SimulatorState, full_org: Organization, failing: ApiEndpoint
) -> None:
    state.faults.add(Fault("status", status=503), endpoint=failing, times=None)
    for _ in range(2):
        for endpoint, path in ENDPOINT_PATHS.items():
            status = await _status(client, path)
            assert status == (503 if endpoint == failing else 200), endpoint
    for endpoint in API_ENDPOINTS:
        assert state.request_count(endpoint) == 2
        statuses = {r.status for r in state.requests if r.endpoint == endpoint}
        assert statuses == ({503} if endpoint == failing else {200})


async def test_project_filter_applies_to_service_accounts(
    client: Client, state: SimulatorState, full_org: Organization
) -> None:
    state.faults.add(
        Fault("status", status=500), endpoint="service_accounts", project_id="proj_other"
    )
    assert await _status(client, _keys_url("proj_other")) == 200
    assert await _status(client, f"{PROJECTS}/proj_main/service_accounts") == 200
    assert await _status(client, f"{PROJECTS}/proj_other/service_accounts") == 500
    assert state.faults.pending() == 0


@pytest.mark.parametrize("endpoint", ["admin_api_keys", "users", "invites", "certificates"])
async def test_wrong_shape_of_the_new_listings_has_string_timestamps(
    client: Client, state: SimulatorState, full_org: Organization, endpoint: ApiEndpoint
) -> None:
    state.faults.add(Fault("wrong_shape"), endpoint=endpoint)
    async with client.get(ENDPOINT_PATHS[endpoint]) as response:
        item = (await response.json())["data"][0]
    assert isinstance(item["created_at"], str)


async def test_oversized_and_repeat_cursor_bend_the_new_listings(
    client: Client, state: SimulatorState, full_org: Organization
) -> None:
    path = ENDPOINT_PATHS["users"]
    state.faults.add(Fault("oversized_page"), endpoint="users")
    async with client.get(path, params={"limit": "1"}) as response:
        assert len((await response.json())["data"]) == 10
    state.faults.add(Fault("repeat_cursor"), endpoint="invites")
    async with client.get(ENDPOINT_PATHS["invites"], params={"after": "whatever"}) as response:
        body = await response.json()
    assert body["has_more"] is True


def test_random_mix_limited_to_endpoints() -> None:
    injector = FaultInjector()
    boom = Fault("status", status=500)
    injector.set_random(1.0, [boom], seed=3, endpoints=["users", "invites"])
    assert injector.take("users") is boom
    assert injector.take("invites") is boom
    assert injector.take("api_keys", "proj_a") is None
    assert injector.take("other") is None
    with pytest.raises(ValueError, match="endpoints"):
        injector.set_random(1.0, [boom], seed=3, endpoints=[])
