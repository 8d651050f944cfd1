"""Real simulator responses checked against the OpenAI Admin API spec shipped as a fixture.

200 answers go through openapi-core (request parameters and response body of
the documented operation); error answers, which the spec declares only as a
component, are checked against `ErrorResponse` with jsonschema.
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
