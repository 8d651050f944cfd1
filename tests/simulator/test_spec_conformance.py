"""Real simulator responses checked against the OpenAI Admin API spec shipped as a fixture.

200 answers of every served listing (projects, project keys, service accounts,
admin keys, users, invites, certificates, the audit log) go through openapi-core (request
parameters and response body of the documented operation); error answers,
which the spec mostly declares only as a component, are checked against
`ErrorResponse` with jsonschema, and the archived project's 400, which the spec
documents, through openapi-core too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestClient
from openapi_core import OpenAPI
from openapi_core.testing import MockRequest, MockResponse
from openapi_core.validation.response.exceptions import InvalidData

from exporter.simulator.app import SimulatorState
from exporter.simulator.audit import AUDIT_ACTOR_KINDS
from exporter.simulator.buckets import BucketPaging
from exporter.simulator.demo import demo_organization
from exporter.simulator.faults import Fault
from exporter.simulator.organization import Organization

Client = TestClient[web.Request, web.Application]
SPEC_PATH = Path(__file__).parent.parent / "fixtures" / "openai" / "admin-api.openapi.yaml"
# The spec's server; simulator paths already carry its /v1 prefix.
SPEC_HOST = "https://api.openai.com"
PROJECTS = "/v1/organization/projects"
AUTH = {"Authorization": "Bearer sk-admin-test-fake"}


@pytest.fixture(scope="module")
def openapi() -> OpenAPI:
    return OpenAPI.from_file_path(str(SPEC_PATH))


@pytest.fixture(scope="module")
def error_schema() -> jsonschema.Draft202012Validator:
    spec = yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))
    schema = {"$ref": "#/components/schemas/ErrorResponse", "components": spec["components"]}
    return jsonschema.Draft202012Validator(schema)


async def _fetch(client: Client, path: str, query: dict[str, str]) -> tuple[int, bytes]:
    async with client.get(path, params=query) as response:
        return response.status, await response.read()


def _validate_ok(openapi: OpenAPI, path: str, query: dict[str, str], body: bytes) -> None:
    request = MockRequest(SPEC_HOST, "get", path, args=query, headers=AUTH)
    openapi.validate_request(request)
    openapi.validate_response(request, MockResponse(body))


async def _walk_keys(
    client: Client, openapi: OpenAPI, project_id: str, access: str | None
) -> list[dict[str, Any]]:
    """Every page of a project's keys, each validated; returns the keys."""
    path = f"{PROJECTS}/{project_id}/api_keys"
    keys: list[dict[str, Any]] = []
    query: dict[str, str] = {"limit": "7"}
    if access is not None:
        query["owner_project_access"] = access
    while True:
        status, body = await _fetch(client, path, query)
        assert status == 200
        _validate_ok(openapi, path, query, body)
        page = json.loads(body)
        keys += page["data"]
        if not page["has_more"]:
            return keys
        query = {**query, "after": page["last_id"]}


@pytest.mark.parametrize(
    "query",
    [{}, {"include_archived": "true"}, {"include_archived": "false", "limit": "3"}],
)
async def test_project_list_pages_conform(
    client: Client, openapi: OpenAPI, org: Organization, query: dict[str, str]
) -> None:
    seen_statuses: set[str] = set()
    while True:
        status, body = await _fetch(client, PROJECTS, query)
        assert status == 200
        _validate_ok(openapi, PROJECTS, query, body)
        page = json.loads(body)
        seen_statuses |= {p["status"] for p in page["data"]}
        if not page["has_more"]:
            break
        query = {**query, "after": page["last_id"]}
    expected = {"active", "archived"} if query.get("include_archived") == "true" else {"active"}
    assert seen_statuses == expected


@pytest.mark.parametrize("access", [None, "active", "inactive", "any"])
async def test_api_key_list_pages_conform(
    client: Client, openapi: OpenAPI, org: Organization, access: str | None
) -> None:
    keys = [
        key
        for project in org.projects(include_archived=True)
        for key in await _walk_keys(client, openapi, project.id, access)
    ]
    assert keys
    if access == "any":
        # The validated set covers every shape the exporter must parse.
        assert {k["owner"]["type"] for k in keys} == {"user", "service_account"}
        assert any(k["last_used_at"] is None for k in keys)
        assert {k["owner_project_access"] for k in keys} == {"active", "inactive"}


async def test_retrieved_project_conforms(
    client: Client, openapi: OpenAPI, org: Organization
) -> None:
    project = org.projects(include_archived=True)[0]
    path = f"{PROJECTS}/{project.id}"
    status, body = await _fetch(client, path, {})
    assert status == 200
    _validate_ok(openapi, path, {}, body)


@pytest.mark.parametrize(
    "fault", [Fault("oversized_page"), Fault("repeat_cursor"), Fault("slow", delay=0.01)]
)
async def test_list_bending_faults_still_conform(
    client: Client, state: SimulatorState, openapi: OpenAPI, org: Organization, fault: Fault
) -> None:
    """These faults break the exporter's assumptions, never the schema."""
    state.faults.add(fault, times=None)
    project = org.projects(include_archived=False)[0]
    for path in (PROJECTS, f"{PROJECTS}/{project.id}/api_keys"):
        status, body = await _fetch(client, path, {"limit": "2"})
        assert status == 200
        _validate_ok(openapi, path, {"limit": "2"}, body)


@pytest.mark.parametrize("path_suffix", ["", "/{project}/api_keys"])
async def test_wrong_shape_fails_the_spec(
    client: Client, state: SimulatorState, openapi: OpenAPI, org: Organization, path_suffix: str
) -> None:
    """The check has teeth: the fault meant to break the schema is caught by it."""
    state.faults.add(Fault("wrong_shape"))
    path = PROJECTS + path_suffix.format(project=org.projects(include_archived=False)[0].id)
    status, body = await _fetch(client, path, {})
    assert status == 200
    with pytest.raises(InvalidData):
        _validate_ok(openapi, path, {}, body)


@pytest.mark.parametrize(
    ("path", "query", "headers", "fault", "expected_status"),
    [
        (PROJECTS, {"limit": "0"}, AUTH, None, 400),
        (PROJECTS, {"limit": "many"}, AUTH, None, 400),
        (PROJECTS, {"after": "proj_unknown"}, AUTH, None, 400),
        (PROJECTS, {}, {"Authorization": "Bearer sk-proj-test-fake"}, None, 401),
        (f"{PROJECTS}/proj_unknown/api_keys", {}, AUTH, None, 404),
        (f"{PROJECTS}/proj_unknown", {}, AUTH, None, 404),
        ("/v1/unknown", {}, AUTH, None, 404),
        (PROJECTS, {}, AUTH, Fault("status", status=429, retry_after="3"), 429),
        (PROJECTS, {}, AUTH, Fault("status", status=403), 403),
        (PROJECTS, {}, AUTH, Fault("status", status=500), 500),
    ],
)
async def test_error_bodies_conform(
    client: Client,
    state: SimulatorState,
    error_schema: jsonschema.Draft202012Validator,
    path: str,
    query: dict[str, str],
    headers: dict[str, str],
    fault: Fault | None,
    expected_status: int,
) -> None:
    if fault is not None:
        state.faults.add(fault)
    async with client.get(path, params=query, headers=headers) as response:
        assert response.status == expected_status
        body = await response.json()
    error_schema.validate(body)


# -- the organization-level listings ----------------------------------------

ORG = "/v1/organization"
NEW_LISTINGS: tuple[tuple[str, dict[str, str]], ...] = (
    (f"{ORG}/admin_api_keys", {}),
    (f"{ORG}/admin_api_keys", {"order": "desc", "limit": "2"}),
    (f"{ORG}/admin_api_keys", {"order": "asc", "limit": "100"}),
    (f"{ORG}/users", {"limit": "7"}),
    (f"{ORG}/invites", {"limit": "2"}),
    (f"{ORG}/certificates", {}),
    (f"{ORG}/certificates", {"order": "asc", "limit": "1"}),
)


async def _walk_validated(
    client: Client, openapi: OpenAPI, path: str, query: dict[str, str]
) -> list[dict[str, Any]]:
    """Every page of a listing, each validated against its operation; returns the items."""
    items: list[dict[str, Any]] = []
    while True:
        status, body = await _fetch(client, path, query)
        assert status == 200, body
        _validate_ok(openapi, path, query, body)
        page = json.loads(body)
        items += page["data"]
        if not page["has_more"]:
            return items
        query = {**query, "after": page["last_id"]}


@pytest.mark.parametrize("organization", ["generated", "demo"])
@pytest.mark.parametrize(("path", "query"), NEW_LISTINGS)
async def test_organization_listings_conform(
    client: Client,
    state: SimulatorState,
    openapi: OpenAPI,
    organization: str,
    path: str,
    query: dict[str, str],
) -> None:
    if organization == "demo":
        state.org = demo_organization("sk-admin-test-fake", now=1_800_000_000)
    items = await _walk_validated(client, openapi, path, query)
    assert items
    if path.endswith("admin_api_keys"):
        assert {k["owner"]["type"] for k in items} == {"user", "service_account"}
        assert any(k["expires_at"] is None for k in items)
        assert any(k["last_used_at"] is None for k in items)
        assert any(k["name"] is None for k in items)
    if path.endswith("users"):
        assert {"owner", "reader", "member"} <= {u["role"] for u in items}
        assert any(u["api_key_last_used_at"] is None for u in items)
        assert any(u["api_key_last_used_at"] is not None for u in items)
    if path.endswith("invites"):
        assert {i["status"] for i in items} == {"pending", "accepted", "expired"}
    if path.endswith("certificates"):
        assert {c["active"] for c in items} == {True, False}


async def test_user_email_filter_conforms(
    client: Client, openapi: OpenAPI, org: Organization
) -> None:
    email = org.members()[0].email
    path = f"{ORG}/users"
    async with client.get(path, params={"emails": email}) as response:
        assert response.status == 200
        body = await response.read()
    request = MockRequest(SPEC_HOST, "get", path, args={"emails": [email]}, headers=AUTH)
    openapi.validate_request(request)
    openapi.validate_response(request, MockResponse(body))
    assert [u["email"] for u in json.loads(body)["data"]] == [email]


@pytest.mark.parametrize("organization", ["generated", "demo"])
async def test_service_account_listings_conform(
    client: Client, state: SimulatorState, openapi: OpenAPI, organization: str
) -> None:
    if organization == "demo":
        state.org = demo_organization("sk-admin-test-fake", now=1_800_000_000)
    accounts = [
        account
        for project in state.org.projects()
        for account in await _walk_validated(
            client, openapi, f"{PROJECTS}/{project.id}/service_accounts", {"limit": "1"}
        )
    ]
    assert {a["role"] for a in accounts} == {"owner", "member"}


@pytest.mark.parametrize(
    "fault", [Fault("oversized_page"), Fault("repeat_cursor"), Fault("slow", delay=0.01)]
)
async def test_list_bending_faults_conform_on_the_new_listings(
    client: Client, state: SimulatorState, openapi: OpenAPI, org: Organization, fault: Fault
) -> None:
    state.faults.add(fault, times=None)
    project = org.projects()[0]
    paths = [p for p, _ in NEW_LISTINGS[::2]] + [f"{PROJECTS}/{project.id}/service_accounts"]
    for path in paths:
        status, body = await _fetch(client, path, {"limit": "2"})
        assert status == 200
        _validate_ok(openapi, path, {"limit": "2"}, body)


@pytest.mark.parametrize(
    "path",
    [
        f"{ORG}/admin_api_keys",
        f"{ORG}/users",
        f"{ORG}/invites",
        f"{ORG}/certificates",
        f"{PROJECTS}/{{project}}/service_accounts",
    ],
)
async def test_wrong_shape_fails_the_spec_on_the_new_listings(
    client: Client, state: SimulatorState, openapi: OpenAPI, org: Organization, path: str
) -> None:
    state.faults.add(Fault("wrong_shape"))
    path = path.format(project=org.projects()[0].id)
    status, body = await _fetch(client, path, {})
    assert status == 200
    with pytest.raises(InvalidData):
        _validate_ok(openapi, path, {}, body)


@pytest.mark.parametrize(
    ("path", "query", "fault", "expected_status"),
    [
        (f"{ORG}/admin_api_keys", {"limit": "101"}, None, 400),
        (f"{ORG}/admin_api_keys", {"order": "sideways"}, None, 400),
        (f"{ORG}/users", {"after": "user-unknown"}, None, 400),
        (f"{ORG}/invites", {"limit": "0"}, None, 400),
        (f"{ORG}/certificates", {"limit": "x"}, None, 400),
        (f"{ORG}/certificates", {}, Fault("status", status=429, retry_after="2"), 429),
        (f"{PROJECTS}/proj_unknown/service_accounts", {}, None, 404),
        (f"{PROJECTS}/{{archived}}/service_accounts", {}, None, 400),
        (f"{ORG}/users", {}, Fault("status", status=503), 503),
    ],
)
async def test_error_bodies_of_the_new_listings_conform(
    client: Client,
    state: SimulatorState,
    error_schema: jsonschema.Draft202012Validator,
    org: Organization,
    path: str,
    query: dict[str, str],
    fault: Fault | None,
    expected_status: int,
) -> None:
    archived = next(p for p in org.projects(include_archived=True) if p.status == "archived")
    if fault is not None:
        state.faults.add(fault)
    async with client.get(path.format(archived=archived.id), params=query) as response:
        assert response.status == expected_status
        body = await response.json()
    error_schema.validate(body)


async def test_archived_project_answer_is_the_documented_400(
    client: Client, openapi: OpenAPI, org: Organization
) -> None:
    """The spec declares a 400 ErrorResponse for this operation: openapi-core checks it."""
    archived = next(p for p in org.projects(include_archived=True) if p.status == "archived")
    path = f"{PROJECTS}/{archived.id}/service_accounts"
    async with client.get(path) as response:
        assert response.status == 400
        body = await response.read()
    request = MockRequest(SPEC_HOST, "get", path, headers=AUTH)
    openapi.validate_response(request, MockResponse(body, status_code=400))


# -- usage, costs, spend limits and alerts, rate limits ------------------------

# Array query parameters of these operations (openapi-core wants them as lists).
ARRAYS = {"group_by", "project_ids", "api_key_ids", "models", "user_ids"}
USAGE = f"{ORG}/usage"
# The clock of these answers: two hours and a bit after the organization's build.
ANSWER_AT = 1_800_000_000 + 2 * 3_600 + 1_234


@pytest.fixture(scope="module")
def bucket_openapi() -> OpenAPI:
    """The spec with the mapping its bucket results' discriminator lacks.

    `UsageTimeBucket.results` is a oneOf with `discriminator: {propertyName: object}`
    and no mapping, so a validator must take `organization.usage.completions.result`
    for a schema name, which does not exist: every real answer would fail. The
    mapping added here (each schema's own `object` value) is what the spec means.
    """
    spec = yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))
    schemas = spec["components"]["schemas"]
    items = schemas["UsageTimeBucket"]["properties"]["results"]["items"]
    items["discriminator"]["mapping"] = {
        schemas[ref["$ref"].rsplit("/", 1)[1]]["properties"]["object"]["enum"][0]: ref["$ref"]
        for ref in items["oneOf"]
    }
    return OpenAPI.from_dict(spec)


@pytest.fixture
def timed(state: SimulatorState) -> SimulatorState:
    state.clock = lambda: ANSWER_AT
    state.cost_amounts_as_strings = "never"  # the quirk breaks the spec: tested apart
    return state


def _args(query: list[tuple[str, str]]) -> dict[str, str | list[str]]:
    args: dict[str, str | list[str]] = {}
    for name, value in query:
        if name in ARRAYS:
            listed = args.setdefault(name, [])
            assert isinstance(listed, list)
            listed.append(value)
        else:
            args[name] = value
    return args


async def _walk_buckets(
    client: Client, openapi: OpenAPI, path: str, query: list[tuple[str, str]]
) -> list[dict[str, Any]]:
    """Every page of a usage or costs query, each validated; returns the buckets."""
    found: list[dict[str, Any]] = []
    page: list[tuple[str, str]] = []
    for _ in range(100):
        async with client.get(path, params=query + page) as response:
            assert response.status == 200, await response.text()
            body = await response.read()
        request = MockRequest(SPEC_HOST, "get", path, args=_args(query + page), headers=AUTH)
        openapi.validate_request(request)
        openapi.validate_response(request, MockResponse(body))
        parsed = json.loads(body)
        found += parsed["data"]
        if not parsed["has_more"]:
            return found
        page = [("page", parsed["next_page"])]
    raise AssertionError("paging did not end")


def _usage_queries(source: str) -> list[list[tuple[str, str]]]:
    day_ago = str(ANSWER_AT - 86_400)
    fields = [
        "project_id",
        "user_id",
        "api_key_id",
        "model",
        *{"completions": ["batch", "service_tier"], "images": ["size", "source"]}.get(source, []),
    ]
    return [
        [("start_time", str(ANSWER_AT - 3 * 86_400))],
        [
            ("start_time", day_ago),
            ("bucket_width", "1h"),
            ("limit", "5"),
            ("group_by", "project_id"),
            ("group_by", "model"),
        ],
        [("start_time", day_ago), ("bucket_width", "1h")] + [("group_by", f) for f in fields],
        [
            ("start_time", str(ANSWER_AT - 600)),
            ("bucket_width", "1m"),
            ("limit", "3"),
            ("group_by", "api_key_id"),
        ],
        # Years before any key: empty buckets.
        [("start_time", "1500000000"), ("end_time", "1500300000"), ("limit", "2")],
    ]


@pytest.mark.parametrize(
    "source",
    [
        "completions",
        "embeddings",
        "moderations",
        "images",
        "audio_speeches",
        "audio_transcriptions",
    ],
)
async def test_usage_pages_conform(
    client: Client, timed: SimulatorState, bucket_openapi: OpenAPI, org: Organization, source: str
) -> None:
    path = f"{USAGE}/{source}"
    queries = _usage_queries(source)
    queries.append([("start_time", str(ANSWER_AT - 86_400)), ("project_ids", org.projects()[0].id)])
    every: list[dict[str, Any]] = []
    for query in queries:
        found = await _walk_buckets(client, bucket_openapi, path, query)
        assert found
        every += found
    results = [r for b in every for r in b["results"]]
    assert results
    assert {r["object"] for r in results} == {f"organization.usage.{source}.result"}
    assert any(not b["results"] for b in every)  # empty buckets are listed


async def test_usage_pages_conform_with_split_buckets(
    client: Client, timed: SimulatorState, bucket_openapi: OpenAPI
) -> None:
    timed.usage_paging = BucketPaging(max_buckets_per_page=2, max_results_per_page=3)
    query = [("start_time", str(ANSWER_AT - 86_400)), ("group_by", "api_key_id")]
    found = await _walk_buckets(client, bucket_openapi, f"{USAGE}/completions", query)
    assert len({b["start_time"] for b in found}) < len(found)  # some bucket was split


@pytest.mark.parametrize(
    "query",
    [
        [("start_time", str(ANSWER_AT - 7 * 86_400))],
        [
            ("start_time", str(ANSWER_AT - 3 * 86400)),
            ("limit", "2"),
            ("group_by", "line_item"),
            ("group_by", "project_id"),
            ("group_by", "api_key_id"),
        ],
        [("start_time", str(ANSWER_AT - 2 * 86_400)), ("group_by", "project_id")],
        [("start_time", "1500000000"), ("end_time", "1500300000"), ("bucket_width", "1d")],
    ],
)
async def test_cost_pages_conform(
    client: Client,
    timed: SimulatorState,
    bucket_openapi: OpenAPI,
    query: list[tuple[str, str]],
) -> None:
    found = await _walk_buckets(client, bucket_openapi, f"{ORG}/costs", query)
    assert found
    for result in (r for b in found for r in b["results"]):
        assert result["object"] == "organization.costs.result"
        assert isinstance(result["amount"]["value"], float)


async def test_cost_amounts_as_strings_break_the_spec(
    client: Client, timed: SimulatorState, bucket_openapi: OpenAPI
) -> None:
    """The quirk is why the conformance checks above switch it off."""
    timed.cost_amounts_as_strings = "always"
    with pytest.raises(InvalidData):
        await _walk_buckets(
            client, bucket_openapi, f"{ORG}/costs", [("start_time", str(ANSWER_AT - 86_400))]
        )


@pytest.mark.parametrize(
    ("path", "fault"),
    [
        (f"{USAGE}/completions", Fault("oversized_page")),
        (f"{USAGE}/images", Fault("repeat_cursor")),
        (f"{ORG}/costs", Fault("oversized_page")),
        (f"{ORG}/costs", Fault("repeat_cursor")),
        (f"{USAGE}/embeddings", Fault("slow", delay=0.01)),
    ],
)
async def test_bucket_bending_faults_conform(
    client: Client, timed: SimulatorState, bucket_openapi: OpenAPI, path: str, fault: Fault
) -> None:
    timed.faults.add(fault)
    query = {"start_time": str(ANSWER_AT - 86_400), "limit": "1"}
    status, body = await _fetch(client, path, query)
    assert status == 200
    _validate_ok(bucket_openapi, path, query, body)


async def test_billing_resources_conform(
    client: Client, state: SimulatorState, openapi: OpenAPI, org: Organization
) -> None:
    limited = [p for p in org.projects(include_archived=True) if org.project_spend_limit(p.id)]
    assert limited
    paths = [f"{ORG}/spend_limit"] + [f"{PROJECTS}/{p.id}/spend_limit" for p in limited]
    statuses = set()
    for path in paths:
        status, body = await _fetch(client, path, {})
        assert status == 200
        _validate_ok(openapi, path, {}, body)
        statuses.add(json.loads(body)["enforcement"]["status"])
    assert statuses == {"inactive", "enforcing"}
    alerts = await _walk_validated(client, openapi, f"{ORG}/spend_alerts", {"limit": "1"})
    assert len(alerts) == len(org.spend_alerts()) >= 2
    await _walk_validated(client, openapi, f"{ORG}/spend_alerts", {"order": "desc"})
    project_alerts = [
        alert
        for p in org.projects(include_archived=True)
        for alert in await _walk_validated(
            client, openapi, f"{PROJECTS}/{p.id}/spend_alerts", {"limit": "1"}
        )
    ]
    assert project_alerts
    assert {a["object"] for a in project_alerts} == {"project.spend_alert"}
    limits = await _walk_validated(
        client, openapi, f"{PROJECTS}/{org.projects()[0].id}/rate_limits", {"limit": "3"}
    )
    assert any("max_images_per_1_minute" in r for r in limits)
    assert any("batch_1_day_max_input_tokens" in r for r in limits)


@pytest.mark.parametrize(
    ("path", "query", "fault", "expected_status"),
    [
        (f"{ORG}/spend_limit", {}, None, 404),  # the organization's limit is cleared below
        (f"{PROJECTS}/{{unlimited}}/spend_limit", {}, None, 404),
        (f"{PROJECTS}/proj_unknown/spend_limit", {}, None, 404),
        (f"{PROJECTS}/proj_unknown/spend_alerts", {}, None, 404),
        (f"{PROJECTS}/proj_unknown/rate_limits", {}, None, 404),
        (f"{ORG}/spend_alerts", {"limit": "101"}, None, 400),
        (f"{USAGE}/completions", {}, None, 400),
        (f"{USAGE}/completions", {"start_time": "1", "bucket_width": "2h"}, None, 400),
        (f"{USAGE}/completions", {"start_time": "1", "page": "nope"}, None, 400),
        (f"{USAGE}/vector_stores", {"start_time": "1"}, None, 404),
        (f"{ORG}/costs", {"start_time": "1", "bucket_width": "1h"}, None, 400),
        (f"{ORG}/costs", {"start_time": "1"}, Fault("status", status=429, retry_after="1"), 429),
    ],
)
async def test_error_bodies_of_the_billing_endpoints_conform(
    client: Client,
    state: SimulatorState,
    error_schema: jsonschema.Draft202012Validator,
    org: Organization,
    path: str,
    query: dict[str, str],
    fault: Fault | None,
    expected_status: int,
) -> None:
    org.clear_spend_limit()
    unlimited = next(
        p for p in org.projects(include_archived=True) if org.project_spend_limit(p.id) is None
    )
    if fault is not None:
        state.faults.add(fault)
    async with client.get(path.format(unlimited=unlimited.id), params=query) as response:
        assert response.status == expected_status
        body = await response.json()
    error_schema.validate(body)


@pytest.mark.parametrize(
    "path",
    [
        f"{USAGE}/completions?start_time={ANSWER_AT - 86_400}",
        f"{USAGE}/completions?start_time=1500000000&end_time=1500000001",
        f"{ORG}/costs?start_time={ANSWER_AT - 86_400}",
        f"{ORG}/spend_limit",
        f"{PROJECTS}/{{project}}/spend_limit",
        f"{ORG}/spend_alerts",
        f"{PROJECTS}/{{project}}/spend_alerts",
        f"{PROJECTS}/{{project}}/rate_limits",
    ],
)
async def test_wrong_shape_fails_the_spec_on_the_billing_endpoints(
    client: Client, timed: SimulatorState, bucket_openapi: OpenAPI, org: Organization, path: str
) -> None:
    timed.faults.add(Fault("wrong_shape"))
    url = path.format(project=org.projects(include_archived=True)[0].id)
    async with client.get(url) as response:
        assert response.status == 200
        body = await response.read()
    bare, _, raw_query = url.partition("?")
    query = dict(part.split("=") for part in raw_query.split("&")) if raw_query else {}
    with pytest.raises(InvalidData):
        _validate_ok(bucket_openapi, bare, query, body)


# -- the audit log -------------------------------------------------------------

AUDIT = f"{ORG}/audit_logs"
# Array query parameters of the audit log listing (openapi-core wants them as lists).
AUDIT_ARRAYS = {"event_types[]", "project_ids[]", "actor_ids[]", "resource_ids[]"}
# Every type whose detail object the simulator generates, the alerted ones first.
GENERATED_AUDIT_TYPES = (
    "api_key.created",
    "api_key.updated",
    "api_key.deleted",
    "login.failed",
    "login.succeeded",
    "ip_allowlist.config.activated",
    "ip_allowlist.config.deactivated",
    "service_account.created",
    "user.added",
    "user.updated",
    "invite.sent",
    "invite.accepted",
    "project.created",
    "project.archived",
    "certificates.activated",
    "logout.succeeded",
    "service_account.updated",
    "rate_limit.updated",
)


def _audit_args(query: list[tuple[str, str]]) -> dict[str, str | list[str]]:
    args: dict[str, str | list[str]] = {}
    for name, value in query:
        if name in AUDIT_ARRAYS:
            listed = args.setdefault(name, [])
            assert isinstance(listed, list)
            listed.append(value)
        else:
            args[name] = value
    return args


async def _walk_audit(
    client: Client, openapi: OpenAPI, query: list[tuple[str, str]]
) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    cursor: list[tuple[str, str]] = []
    while True:
        async with client.get(AUDIT, params=query + cursor) as response:
            assert response.status == 200, await response.text()
            body = await response.read()
        request = MockRequest(
            SPEC_HOST, "get", AUDIT, args=_audit_args(query + cursor), headers=AUTH
        )
        openapi.validate_request(request)
        openapi.validate_response(request, MockResponse(body))
        page = json.loads(body)
        events += page["data"]
        if not page["has_more"]:
            return events
        cursor = [("after", page["last_id"])]


@pytest.mark.parametrize(
    "query",
    [
        [("limit", "7")],
        [("limit", "100"), ("effective_at[gt]", str(1_800_000_000 - 3_600))],
        [("event_types[]", "api_key.created"), ("event_types[]", "login.failed")],
    ],
)
async def test_audit_log_pages_conform(
    client: Client, openapi: OpenAPI, org: Organization, query: list[tuple[str, str]]
) -> None:
    project = org.projects()[0]
    for index, event_type in enumerate(GENERATED_AUDIT_TYPES):
        for kind in (*AUDIT_ACTOR_KINDS, None):
            org.record_audit_event(
                event_type,
                effective_at=1_800_000_000 - index,
                project_id=project.id if kind != "session" else None,
                actor=kind,
            )
    org.audit_key_created(project.id, "key_unrestricted", [], effective_at=1_800_000_000)
    events = await _walk_audit(client, openapi, query)
    assert events
    if len(query) == 1:
        assert {e["type"] for e in events} == set(GENERATED_AUDIT_TYPES)
        assert {e["actor"]["type"] if e["actor"] else None for e in events} == {
            "session",
            "api_key",
            None,
        }


async def test_demo_audit_log_conforms(
    client: Client, state: SimulatorState, openapi: OpenAPI
) -> None:
    """The demo's history, trickle and alert cases, two hours in."""
    now = 1_800_000_000
    state.org = demo_organization("sk-admin-test-fake", now=now, clock=lambda: now + 7_200)
    events = await _walk_audit(client, openapi, [("limit", "100")])
    assert {"api_key.created", "ip_allowlist.config.deactivated"} <= {e["type"] for e in events}


async def test_audit_log_of_an_unknown_type_breaks_only_the_type_enum(
    client: Client, openapi: OpenAPI, org: Organization
) -> None:
    """Served as it is (a newer API's type): the spec's enum refuses it, so does the check."""
    org.record_audit_event("vector_store.shredded", effective_at=1_800_000_000)
    with pytest.raises(InvalidData):
        await _walk_audit(client, openapi, [])


async def test_audit_log_errors_conform(
    client: Client,
    state: SimulatorState,
    error_schema: jsonschema.Draft202012Validator,
    org: Organization,
) -> None:
    org.audit_logging = False
    async with client.get(AUDIT) as response:
        assert response.status == 403
        error_schema.validate(await response.json())
    org.audit_logging = True
    async with client.get(AUDIT, params={"effective_at[gt]": "soon"}) as response:
        assert response.status == 400
        error_schema.validate(await response.json())


async def test_wrong_shape_fails_the_spec_on_the_audit_log(
    client: Client, state: SimulatorState, openapi: OpenAPI, org: Organization
) -> None:
    org.record_audit_event("login.succeeded", effective_at=1_800_000_000)
    state.faults.add(Fault("wrong_shape"))
    status, body = await _fetch(client, AUDIT, {})
    assert status == 200
    with pytest.raises(InvalidData):
        _validate_ok(openapi, AUDIT, {}, body)
