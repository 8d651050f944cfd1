"""The audit log listing: order, cursors inside one second, filters, bad parameters,
late and unknown events, audit logging off, and faults on `audit_logs`."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, replace
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from exporter.simulator.app import SimulatorState, create_simulator_app
from exporter.simulator.audit import AuditLog, AuditQuery, SimAuditActor, SimAuditEvent
from exporter.simulator.faults import Fault, FaultKind
from exporter.simulator.organization import (
    AUDIT_HISTORY_DAYS,
    DAY,
    Organization,
    OrganizationSpec,
    SimServiceAccount,
    build_organization,
)

from .conftest import NOW

Client = TestClient[web.Request, web.Application]
AUDIT = "/v1/organization/audit_logs"
Query = dict[str, str] | list[tuple[str, str]]


@pytest.fixture
def org() -> Organization:
    """The conftest's organization with an empty audit log: each test records its own."""
    return build_organization(OrganizationSpec(seed=7, now=NOW, audit_history=False))


async def _get(client: Client, query: Query | None = None) -> tuple[int, dict[str, Any]]:
    async with client.get(AUDIT, params=query or {}) as response:
        return response.status, await response.json()


async def _ids(client: Client, query: Query | None = None) -> list[str]:
    status, body = await _get(client, query)
    assert status == 200, body
    return [event["id"] for event in body["data"]]


async def _walk(client: Client, query: list[tuple[str, str]]) -> list[str]:
    """Every id, following `after` page by page."""
    found: list[str] = []
    page: list[tuple[str, str]] = []
    while True:
        status, body = await _get(client, query + page)
        assert status == 200, body
        found += [event["id"] for event in body["data"]]
        if not body["has_more"]:
            return found
        page = [("after", body["last_id"])]


def _times(org: Organization, *effective_at: int) -> list[SimAuditEvent]:
    return [org.record_audit_event("login.succeeded", effective_at=t) for t in effective_at]


async def test_events_are_listed_newest_first_same_second_newest_recorded_first(
    client: Client, org: Organization
) -> None:
    first, late, second, same_second = _times(org, NOW - 30, NOW - 60, NOW, NOW)
    expected = [same_second.id, second.id, first.id, late.id]
    assert await _ids(client) == expected
    assert [e.id for e in org.audit_events()] == expected
    _, body = await _get(client)
    assert body["first_id"] == expected[0]
    assert body["last_id"] == expected[-1]
    assert body["has_more"] is False
    assert body["object"] == "list"


async def test_a_page_boundary_inside_one_second_loses_and_repeats_nothing(
    client: Client, org: Organization
) -> None:
    events = _times(org, *([NOW - 5] * 7), *([NOW] * 5))
    newest_first = [e.id for e in reversed(events)]
    assert await _walk(client, [("limit", "3")]) == newest_first
    # `before` walks back up to the newest, page by page, each page newest first.
    _, oldest_page = await _get(client, {"limit": "3", "after": newest_first[5]})
    assert [e["id"] for e in oldest_page["data"]] == newest_first[6:9]
    _, previous = await _get(client, {"limit": "3", "before": newest_first[6]})
    assert [e["id"] for e in previous["data"]] == newest_first[3:6]
    assert previous["has_more"] is True
    _, top = await _get(client, {"limit": "3", "before": newest_first[3]})
    assert [e["id"] for e in top["data"]] == newest_first[:3]
    assert top["has_more"] is False


async def test_a_late_event_is_placed_by_its_effective_at(
    client: Client, org: Organization
) -> None:
    newer, older = _times(org, NOW, NOW - 100)
    seen = await _ids(client, {"limit": "1"})
    assert seen == [newer.id]
    late = org.record_audit_event("api_key.deleted", effective_at=NOW - 50)
    # Paging on from the page already read finds the late event where it belongs.
    assert await _ids(client, {"after": newer.id}) == [late.id, older.id]
    assert await _ids(client, {"effective_at[gt]": str(NOW - 60)}) == [newer.id, late.id]


async def test_unknown_types_are_listed_as_they_are(client: Client, org: Organization) -> None:
    org.record_audit_event(
        "vector_store.shredded", effective_at=NOW, details={"id": "vs_1", "note": "new"}
    )
    _, body = await _get(client)
    (event,) = body["data"]
    assert event["type"] == "vector_store.shredded"
    assert event["vector_store.shredded"] == {"id": "vs_1", "note": "new"}
    assert await _ids(client, [("event_types[]", "vector_store.shredded")]) == [event["id"]]


@pytest.mark.parametrize(
    ("operator", "expected"),
    [("gt", [3, 2]), ("gte", [3, 2, 1]), ("lt", [0]), ("lte", [1, 0])],
)
async def test_effective_at_bounds(
    client: Client, org: Organization, operator: str, expected: list[int]
) -> None:
    events = _times(org, NOW - 30, NOW - 20, NOW - 10, NOW)
    ids = await _ids(client, {f"effective_at[{operator}]": str(NOW - 20)})
    assert ids == [events[i].id for i in expected]


async def test_effective_at_range_combined_with_paging(client: Client, org: Organization) -> None:
    events = _times(org, *range(NOW - 100, NOW))
    query = [
        ("effective_at[gte]", str(NOW - 60)),
        ("effective_at[lt]", str(NOW - 10)),
        ("limit", "7"),
    ]
    assert await _walk(client, query) == [e.id for e in reversed(events[40:90])]


async def test_filters_by_type_project_actor_and_resource(
    client: Client, org: Organization
) -> None:
    first, second = (p.id for p in org.projects()[:2])
    robot = SimAuditActor(
        "service_account_api_key", api_key_id="key_robot", service_account_id="svc_acct_robot"
    )
    person = SimAuditActor(
        "session", user_id="user-ada", user_email="ada@example.com", ip_address="203.0.113.9"
    )
    created = org.audit_key_created(
        first, "key_one", ["api.model.read"], actor=robot, effective_at=NOW - 3
    )
    deleted = org.audit_key_deleted(second, "key_one", actor=person, effective_at=NOW - 2)
    login = org.record_audit_event("login.failed", actor=person, effective_at=NOW - 1)
    system = org.record_audit_event(
        "project.archived", actor=None, project_id=second, effective_at=NOW
    )
    assert await _ids(
        client, [("event_types[]", "api_key.created"), ("event_types[]", "login.failed")]
    ) == [login.id, created.id]
    assert await _ids(client, [("project_ids[]", second)]) == [system.id, deleted.id]
    assert await _ids(client, [("actor_ids[]", "svc_acct_robot")]) == [created.id]
    assert await _ids(client, [("actor_ids[]", "key_robot")]) == [created.id]
    assert await _ids(client, [("actor_ids[]", "user-ada")]) == [login.id, deleted.id]
    assert await _ids(client, [("actor_emails[]", "ada@example.com")]) == [login.id, deleted.id]
    assert await _ids(client, [("resource_ids[]", "key_one")]) == [deleted.id, created.id]
    combined = [("resource_ids[]", "key_one"), ("project_ids[]", first)]
    assert await _ids(client, combined) == [created.id]


async def test_a_filtered_walk_pages_across_what_the_filter_drops(
    client: Client, org: Organization
) -> None:
    kept = []
    for second in range(30):
        org.record_audit_event("login.succeeded", effective_at=NOW - second)
        kept.append(org.record_audit_event("login.failed", effective_at=NOW - second))
    walked = await _walk(client, [("event_types[]", "login.failed"), ("limit", "4")])
    assert walked == [e.id for e in kept]


async def test_wire_form_of_events_and_actors(client: Client, org: Organization) -> None:
    project = org.projects()[0]
    org.audit_key_updated(project.id, "key_x", [], actor="user_api_key", effective_at=NOW - 2)
    org.record_audit_event("login.succeeded", actor="session", effective_at=NOW - 1)
    org.record_audit_event("tenant.sso.migrated", actor=None, effective_at=NOW)
    _, body = await _get(client)
    system, login, updated = body["data"]
    assert system["actor"] is None
    assert "project" not in system
    assert login["actor"]["type"] == "session"
    assert set(login["actor"]["session"]) == {"user", "ip_address", "user_agent"}
    assert login["actor"]["session"]["user"]["email"] in {m.email for m in org.members()}
    assert login["login.succeeded"] == {}
    assert updated["project"] == {"id": project.id, "name": project.name}
    assert updated["actor"]["api_key"]["type"] == "user"
    assert updated["actor"]["api_key"]["id"].startswith("key_")
    assert updated["api_key.updated"] == {"id": "key_x", "changes_requested": {"scopes": []}}


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "101"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"after": "audit_log-unknown"}, "after"),
        ({"before": "audit_log-unknown"}, "before"),
        ({"effective_at[gt]": "yesterday"}, "effective_at[gt]"),
        ({"effective_at[gte]": "1.5"}, "effective_at[gte]"),
        ({"effective_at[lt]": ""}, "effective_at[lt]"),
        ({"effective_at[lte]": "1e9"}, "effective_at[lte]"),
    ],
)
async def test_bad_parameters_are_a_400_naming_them(
    client: Client, org: Organization, query: dict[str, str], param: str
) -> None:
    _times(org, NOW)
    status, body = await _get(client, query)
    assert status == 400
    assert body["error"]["type"] == "invalid_request_error"
    assert body["error"]["param"] == param
    assert param in body["error"]["message"]


async def test_both_cursors_at_once_are_a_400(client: Client, org: Organization) -> None:
    a, b = _times(org, NOW, NOW)
    status, body = await _get(client, {"after": a.id, "before": b.id})
    assert status == 400
    assert "'after' or 'before'" in body["error"]["message"]


@pytest.mark.parametrize(("limit", "size"), [(None, 20), ("1", 1), ("100", 100)])
async def test_limit_bounds(
    client: Client, org: Organization, limit: str | None, size: int
) -> None:
    _times(org, *range(NOW - 150, NOW))
    _, body = await _get(client, {} if limit is None else {"limit": limit})
    assert len(body["data"]) == size
    assert body["has_more"] is True


async def test_audit_logging_off_is_the_chosen_403(client: Client, org: Organization) -> None:
    _times(org, NOW)
    org.audit_logging = False
    status, body = await _get(client)
    assert status == 403
    assert body == {
        "error": {
            "message": "Audit logging is not enabled for this organization.",
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        }
    }
    org.audit_logging = True
    assert len(await _ids(client)) == 1


async def test_faults_hit_audit_logs_alone(
    client: Client, state: SimulatorState, org: Organization
) -> None:
    _times(org, NOW)
    state.faults.add(Fault("status", status=503), endpoint="audit_logs")
    async with client.get("/v1/organization/projects") as response:
        assert response.status == 200
    status, _ = await _get(client)
    assert status == 503
    assert len(await _ids(client)) == 1
    assert [r.status for r in state.requests if r.endpoint == "audit_logs"] == [503, 200]


@pytest.mark.parametrize("kind", ["oversized_page", "repeat_cursor"])
async def test_list_bending_faults_bend_the_audit_log(
    client: Client, state: SimulatorState, org: Organization, kind: FaultKind
) -> None:
    events = _times(org, *range(NOW - 30, NOW))
    state.faults.add(Fault(kind), endpoint="audit_logs")
    _, body = await _get(client, {"limit": "2", "after": events[-1].id})
    if kind == "oversized_page":
        assert len(body["data"]) == 20
    else:
        assert body["data"][0]["id"] == events[-1].id  # the first page again
        assert body["has_more"] is True


async def test_wrong_shape_sends_string_times(
    client: Client, state: SimulatorState, org: Organization
) -> None:
    _times(org, NOW)
    state.faults.add(Fault("wrong_shape"), endpoint="audit_logs")
    _, body = await _get(client)
    assert isinstance(body["data"][0]["effective_at"], str)


def test_recording_defaults_to_the_organization_clock() -> None:
    org = Organization(now=NOW)
    event = org.record_audit_event("login.succeeded")
    assert event.effective_at == NOW
    assert event.actor is not None
    assert event.actor.kind == "session"


def test_a_page_of_a_large_log_is_found_by_bisection() -> None:
    """100,000 events, then pages from the newest, from a cursor deep inside, and by a
    time range: each costs about a page, not a walk of the log."""
    log = AuditLog()
    events = [
        SimAuditEvent(
            f"audit_log-{i}", "login.succeeded", NOW - 100_000 + i // 3, None, None, None, {}
        )
        for i in range(100_000)
    ]
    for event in events:
        log.add(event)
    started = time.perf_counter()
    for _ in range(200):
        assert log.page(query=AuditQuery(), limit=100).items[0] is events[-1]
        deep = log.page(query=AuditQuery(), limit=100, after=events[500].id)
        assert deep.items[0] is events[499]
        window = log.page(query=AuditQuery(since=NOW - 90_000, until=NOW - 89_990), limit=100)
        assert len(window.items) == 33
    # 600 pages: a scan of 100,000 events each would take seconds.
    assert time.perf_counter() - started < 1.0


def test_duplicate_ids_are_refused() -> None:
    log = AuditLog()
    event = SimAuditEvent("audit_log-1", "login.succeeded", NOW, None, None, None, {})
    log.add(event)
    with pytest.raises(ValueError, match="duplicate"):
        log.add(event)


# -- the generated organization's history ----------------------------------------

# Enough keys that some were created in the last 7 days (keys spread over 800 days).
BUSY = OrganizationSpec(seed=3, projects=10, keys_per_project=100, now=NOW)


def _resources(org: Organization) -> str:
    projects = org.projects(include_archived=True)
    return json.dumps(
        [asdict(p) for p in projects]
        + [asdict(k) for p in projects for k in org.keys(p.id)]
        + [asdict(a) for p in projects for a in org.service_accounts(p.id)]
        + [asdict(m) for m in org.members()]
        + [asdict(k) for k in org.admin_keys()]
        + [asdict(i) for i in org.invites()]
        + [asdict(c) for c in org.certificates()],
        sort_keys=True,
        default=str,
    )


def test_history_records_every_recent_key_with_scopes() -> None:
    org = build_organization(BUSY)
    since = NOW - AUDIT_HISTORY_DAYS * DAY
    recent = {
        k.id: (p.id, k)
        for p in org.projects(include_archived=True)
        for k in org.keys(p.id)
        if k.created_at >= since
    }
    assert len(recent) >= 5
    created = [e for e in org.audit_events() if e.type == "api_key.created"]
    assert {e.details["id"] for e in created} == set(recent)
    for event in created:
        project_id, key = recent[event.details["id"]]
        assert event.project_id == project_id
        assert event.effective_at == key.created_at
        assert event.actor is not None
        if isinstance(key.owner, SimServiceAccount):
            assert event.actor.kind == "service_account_api_key"
            assert event.actor.service_account_id == key.owner.id
        else:
            assert (event.actor.kind, event.actor.user_id) == ("session", key.owner.id)
    scope_sets = [tuple(e.details["data"]["scopes"]) for e in created]
    assert () in scope_sets  # some unrestricted
    assert any(scope_sets)  # some restricted
    types = {e.type for e in org.audit_events()}
    assert {"login.succeeded", "login.failed", "invite.sent"} <= types
    assert all(since <= e.effective_at <= NOW for e in org.audit_events())


def test_history_is_deterministic_and_changes_nothing_else() -> None:
    def listed(spec: OrganizationSpec) -> list[dict[str, Any]]:
        return [asdict(e) for e in build_organization(spec).audit_events()]

    assert listed(BUSY) == listed(BUSY)
    assert listed(replace(BUSY, audit_history=False)) == []
    with_history = build_organization(BUSY)
    without = build_organization(replace(BUSY, audit_history=False))
    assert _resources(with_history) == _resources(without)


async def test_a_spec_with_audit_logging_off_refuses_the_listing(
    aiohttp_client: AiohttpClient,
) -> None:
    org = build_organization(replace(BUSY, projects=2, audit_logging=False))
    assert org.audit_events()  # the history is there, only unreadable
    client = await aiohttp_client(
        create_simulator_app(SimulatorState(org=org)),
        headers={"Authorization": "Bearer sk-admin-test-fake"},
    )
    status, body = await _get(client)
    assert status == 403
    assert body["error"]["message"] == "Audit logging is not enabled for this organization."
