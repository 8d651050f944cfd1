"""The renderer is driven by declared families: counters get their TYPE right in both
formats, since-families move with the clock, and the joined gzip member is exact;
the generic lister follows page tokens and keeps repeated query parameters."""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Iterable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from prometheus_client.exposition import generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from pydantic import SecretStr

from bench.baseline import BaselineCollector
from exporter.collectors.base import Attempt, Collector, Family, Options, Samples
from exporter.rendering.gzip_members import crc32_combine
from exporter.rendering.renderer import SnapshotRenderer
from exporter.snapshot import ResourceState, Snapshot
from exporter.upstream.client import AdminApiClient
from exporter.upstream.errors import UpstreamError
from exporter.upstream.lister import TokenEndpoint, list_token_pages
from exporter.upstream.models import Wire
from exporter.upstream.retry import RetryPolicy
from tests.support import assert_promtool_accepts, parse_samples

NOW = 1_750_000_000.0
REQUESTS = Family("openai_test_requests", "Requests counted.", ("model",), type="counter")
LIMIT = Family("openai_test_limit", "A gauge.", ("model",))
SINCE = Family("openai_test_age_seconds", "Seconds since.", ("model",), since=True)


class CountingCollector(Collector[dict[str, int]]):
    name = "counting"
    endpoints = ("counting",)
    families = (REQUESTS, LIMIT, SINCE)

    async def fetch(self, client: AdminApiClient, attempt: Attempt[dict[str, int]]) -> None:
        raise NotImplementedError  # rendered from hand-made states only

    def samples(self, rows: dict[str, int], snapshot: Snapshot) -> Iterable[tuple[Family, Samples]]:
        yield REQUESTS, (((model,), count) for model, count in rows.items())
        yield LIMIT, (((model,), 0.5) for model in rows)
        yield SINCE, (((model,), int(NOW) - 60) for model in rows)


def snapshot_of(rows: dict[str, int]) -> Snapshot:
    return Snapshot({"counting": ResourceState(rows, NOW)})


def render(rows: dict[str, int], *, openmetrics: bool, gzipped: bool = False) -> bytes:
    renderer = SnapshotRenderer([CountingCollector(Options())], ttls={"counting": 60})
    tail = b"# EOF\n" if openmetrics else b""
    pieces = renderer.render(
        snapshot_of(rows), now=NOW, tail=tail, gzip=gzipped, openmetrics=openmetrics
    )
    return b"".join(pieces)


def baseline(rows: dict[str, int], *, openmetrics: bool) -> bytes:
    collector = BaselineCollector(
        [CountingCollector(Options())], snapshot_of(rows), now=NOW, ttls={"counting": 60}
    )
    if openmetrics:
        return generate_openmetrics(collector)  # type: ignore[no-untyped-call,no-any-return]
    return generate_latest(collector)


ROWS = {"gpt-4o": 12, 'we"ird\\model': 3}


def test_counters_are_typed_as_prometheus_client_types_them_in_the_text_format() -> None:
    text = render(ROWS, openmetrics=False).decode()
    assert "# TYPE openai_test_requests_total counter\n" in text
    assert 'openai_test_requests_total{model="gpt-4o"} 12\n' in text
    assert parse_samples(text) == parse_samples(baseline(ROWS, openmetrics=False).decode())
    assert_promtool_accepts(text)


def test_counters_are_typed_by_their_family_name_in_openmetrics() -> None:
    text = render(ROWS, openmetrics=True).decode()
    assert "# TYPE openai_test_requests counter\n" in text
    [family] = [
        f
        for f in openmetrics_families(text)  # type: ignore[no-untyped-call]
        if f.name == "openai_test_requests"
    ]
    assert family.type == "counter"
    ours = {
        (s.name, tuple(s.labels.items()), s.value)
        for f in openmetrics_families(text)  # type: ignore[no-untyped-call]
        for s in f.samples
    }
    theirs_text = baseline(ROWS, openmetrics=True).decode()
    theirs = {
        (s.name, tuple(s.labels.items()), s.value)
        for f in openmetrics_families(theirs_text)  # type: ignore[no-untyped-call]
        for s in f.samples
        if not s.name.endswith("_created")
    }
    assert ours == theirs


@pytest.mark.parametrize("openmetrics", [False, True])
def test_the_gzip_member_holds_exactly_the_plain_text(openmetrics: bool) -> None:
    plain = render(ROWS, openmetrics=openmetrics)
    assert gzip.decompress(render(ROWS, openmetrics=openmetrics, gzipped=True)) == plain


def test_since_families_are_seconds_since_their_timestamp() -> None:
    text = render(ROWS, openmetrics=False).decode()
    assert 'openai_test_age_seconds{model="gpt-4o"} 60\n' in text


@pytest.mark.parametrize("length", [0, 1, 7, 4096, 1_000_003])
def test_crc32_combine_agrees_with_zlib(length: int) -> None:
    first, second = os.urandom(333), os.urandom(length)
    combined = crc32_combine(zlib.crc32(first), zlib.crc32(second), len(second))
    assert combined == zlib.crc32(first + second)


class Bucket(Wire):
    id: str
    start_time: int


BUCKETS = TokenEndpoint("usage_test", "/organization/usage/completions", Bucket)


async def token_pages(
    aiohttp_server: Any, pages: dict[str | None, dict[str, Any]]
) -> tuple[list[list[str]], list[list[tuple[str, str]]]]:
    seen: list[list[tuple[str, str]]] = []

    async def serve(request: web.Request) -> web.Response:
        seen.append(list(request.query.items()))
        return web.json_response(pages[request.query.get("page")])

    app = web.Application()
    app.router.add_get("/v1/organization/usage/completions", serve)
    server = await aiohttp_server(app)
    async with aiohttp.ClientSession() as session:
        client = AdminApiClient(
            session,
            str(server.make_url("/v1")),
            SecretStr("sk-admin-test-fake"),
            observe=lambda endpoint, code: None,
            retry=RetryPolicy(max_retries=0),
            request_timeout=5,
        )
        got = [
            [bucket.id for bucket in page]
            async for page in list_token_pages(
                client,
                BUCKETS,
                limit=2,
                query=[("group_by", "project_id"), ("group_by", "model"), ("start_time", "0")],
            )
        ]
    return got, seen


def bucket_page(ids: list[str], next_page: str | None) -> dict[str, Any]:
    return {
        "object": "page",
        "data": [{"object": "bucket", "id": i, "start_time": 0} for i in ids],
        "has_more": next_page is not None,
        "next_page": next_page,
    }


async def test_page_tokens_are_followed_and_repeated_parameters_kept(aiohttp_server: Any) -> None:
    got, seen = await token_pages(
        aiohttp_server,
        {None: bucket_page(["a", "b"], "tok1"), "tok1": bucket_page(["c"], None)},
    )
    assert got == [["a", "b"], ["c"]]
    assert seen[0] == [
        ("limit", "2"),
        ("group_by", "project_id"),
        ("group_by", "model"),
        ("start_time", "0"),
    ]
    assert seen[1][-1] == ("page", "tok1")


async def test_a_repeated_page_token_stops_the_listing(aiohttp_server: Any) -> None:
    with pytest.raises(UpstreamError, match="page token repeated"):
        await token_pages(
            aiohttp_server,
            {None: bucket_page(["a"], "tok"), "tok": bucket_page(["b"], "tok")},
        )


async def test_more_buckets_than_asked_is_a_bad_response(aiohttp_server: Any) -> None:
    with pytest.raises(UpstreamError, match="more than the 2 asked for") as caught:
        await token_pages(aiohttp_server, {None: bucket_page(["a", "b", "c"], None)})
    assert caught.value.reason == "bad_response"
