"""Property tests on the response parser, through the real client over HTTP.

Whatever a 200 carries (any bytes, any JSON, pages that are nearly right), listing
projects or keys gives parsed items or an ``UpstreamError`` with reason
``bad_response``: never another exception, and never items that cannot be turned
into a valid exposition.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from exporter.collectors.api_keys import API_KEYS, ProjectRecord, key_record
from exporter.collectors.projects import PROJECTS
from exporter.upstream.client import AdminApiClient
from exporter.upstream.errors import UpstreamError
from exporter.upstream.lister import list_all
from exporter.upstream.retry import RetryPolicy
from tests.hostile.cases import CANARY, CANARY_MARK
from tests.rendering import keys_snapshot, reference_text

EXAMPLES = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@dataclass
class BodyServer:
    """Answers every request with ``body`` and status 200."""

    body: bytes = b"{}"
    served: int = field(default=0)


@asynccontextmanager
async def body_server(state: BodyServer) -> AsyncIterator[str]:
    async def answer(request: web.Request) -> web.Response:
        state.served += 1
        return web.Response(body=state.body, content_type="application/json")

    app = web.Application()
    app.router.add_get("/{tail:.*}", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/v1"
    finally:
        await runner.cleanup()


async def list_both(body: bytes) -> list[object]:
    """Projects, then one project's keys, each parsed from ``body``; errors as values."""
    state = BodyServer(body)
    outcomes: list[object] = []
    async with body_server(state) as base_url, aiohttp.ClientSession() as session:
        client = AdminApiClient(
            session,
            base_url,
            SecretStr(CANARY),
            observe=lambda endpoint, code: None,
            retry=RetryPolicy(max_retries=0),
            request_timeout=10,
            max_pages=5,
        )
        try:
            outcomes.append(await list_all(client, PROJECTS))
        except UpstreamError as error:
            outcomes.append(error)
        try:
            outcomes.append(await list_all(client, API_KEYS, path_args={"project_id": "proj_x"}))
        except UpstreamError as error:
            outcomes.append(error)
    return outcomes


def check(outcomes: list[object]) -> None:
    projects, keys = outcomes
    for outcome in outcomes:
        if isinstance(outcome, UpstreamError):
            assert outcome.reason == "bad_response", outcome
            assert CANARY_MARK not in str(outcome)
    if isinstance(keys, list):
        # Parsed keys must make a valid exposition: finite values, parsable text.
        records = tuple(key_record(key) for key in keys)
        inventory = keys_snapshot((ProjectRecord("proj_x", "x", "active", records),), taken_at=0.0)
        text = reference_text(inventory, now=1_700_000_000.0)
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                assert math.isfinite(sample.value), sample
    if isinstance(projects, list):
        assert all(project.id for project in projects)


def run(body: bytes) -> None:
    check(asyncio.run(list_both(body)))


# -- strategies ----------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.just(10**400)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


# Plausible times, and the ones that are not: negative, past year 9999, past float64.
timestamps = st.integers(min_value=0, max_value=2_000_000_000) | st.sampled_from(
    [-1, 2**63, 253_402_300_800, 10**30, 10**400]
)
owners = st.one_of(
    st.builds(
        lambda i, n, e: {"type": "user", "user": {"id": i, "name": n, "email": e}},
        st.text(max_size=8),
        st.text(max_size=8),
        st.none() | st.text(max_size=8),
    ),
    st.builds(
        lambda i, n: {"type": "service_account", "service_account": {"id": i, "name": n}},
        st.text(max_size=8),
        st.text(max_size=8),
    ),
)


@st.composite
def valid_items(draw: st.DrawFn, kind: str) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": draw(st.text(min_size=1, max_size=12)),
        "object": kind,
        "name": draw(st.text(max_size=12)),
        "created_at": draw(timestamps),
        "redacted_value": CANARY,  # an unknown field, and a secret: never echoed
    }
    if kind == "organization.project":
        item["archived_at"] = draw(st.none() | timestamps)
        item["status"] = draw(st.sampled_from(["active", "archived"]))
    else:
        item["last_used_at"] = draw(st.none() | timestamps)
        item["owner_project_access"] = draw(st.sampled_from(["active", "inactive"]))
        item["owner"] = draw(owners)
    return item


@st.composite
def near_pages(draw: st.DrawFn) -> bytes:
    """A valid page of projects or keys, then up to three fields dropped or replaced
    by any JSON value, at the page's level or an item's."""
    kind = draw(st.sampled_from(["organization.project", "organization.project.api_key"]))
    items = draw(st.lists(valid_items(kind), max_size=4))
    page: dict[str, Any] = {"object": "list", "data": items, "has_more": False}
    if items:
        page["first_id"], page["last_id"] = items[0]["id"], items[-1]["id"]
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        target = draw(st.sampled_from([page, *items]))
        name = draw(st.sampled_from(sorted(target)))
        if draw(st.booleans()):
            del target[name]
        else:
            target[name] = draw(json_values)
    return json.dumps(page).encode()


@EXAMPLES
@given(st.binary(max_size=400))
def test_any_bytes(body: bytes) -> None:
    run(body)


@EXAMPLES
@given(json_values.map(lambda value: json.dumps(value).encode()))
def test_any_json(body: bytes) -> None:
    run(body)


@settings(EXAMPLES, max_examples=150)
@given(near_pages())
def test_pages_that_are_nearly_right(body: bytes) -> None:
    run(body)


@pytest.mark.parametrize(
    "value",
    [-1, 253_402_300_800, 2**63, 10**400],
    ids=["negative", "year-10000", "2**63", "beyond-float"],
)
def test_a_timestamp_that_is_not_a_time_is_a_bad_response(value: int) -> None:
    """Found by the properties above: 10**400 made the exposition unparsable for
    Prometheus (a sample value beyond float64), failing the whole scrape."""
    key = {
        "id": "key_x",
        "object": "organization.project.api_key",
        "name": "k",
        "created_at": value,
        "last_used_at": None,
        "owner_project_access": "active",
        "owner": {"type": "user", "user": {"id": "u", "name": "n"}},
    }
    body = json.dumps({"object": "list", "data": [key], "has_more": False}).encode()
    _, keys = asyncio.run(list_both(body))
    assert isinstance(keys, UpstreamError)
    assert keys.reason == "bad_response"
