"""Hostile HTTP on the exporter's own port: raw bytes on a socket, as no polite client
would send them. Every answer is a clean 4xx (or a 200 where the request is odd but
fine), never a 5xx, nothing is logged as an error, and the server stays up."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from exporter.cli import hush_malformed_requests
from tests.hostile.cases import CANARY, CANARY_MARK, hostile_settings, seed_organization
from tests.support import ExporterFactory, Simulation

CRLF = "\r\n"


def request(method: str = "GET", target: str = "/metrics", *headers: str, body: str = "") -> bytes:
    lines = [f"{method} {target} HTTP/1.1", "Host: exporter", *headers, "Connection: close"]
    return (CRLF.join(lines) + CRLF + CRLF + body).encode("utf-8", "surrogateescape")


# (id, raw request, the statuses that are right for it)
CLIENT_ERROR: tuple[int, ...] = tuple(range(400, 500))
OK_OR_CLIENT_ERROR: tuple[int, ...] = (200, *CLIENT_ERROR)
RAW: list[tuple[str, bytes, tuple[int, ...]]] = [
    # Oversized
    ("huge-header-value", request("GET", "/metrics", "X-Big: " + "a" * 20_000), CLIENT_ERROR),
    ("huge-header-name", request("GET", "/metrics", "X" * 20_000 + ": a"), CLIENT_ERROR),
    (
        "many-headers",
        request("GET", "/metrics", *[f"X-H{n}: v" for n in range(2_000)]),
        CLIENT_ERROR,
    ),
    ("huge-path", request("GET", "/" + "a" * 20_000), CLIENT_ERROR),
    ("huge-query", request("GET", "/metrics?" + "a=b&" * 5_000), CLIENT_ERROR),
    ("huge-cookie", request("GET", "/", "Cookie: " + "c=" * 10_000), CLIENT_ERROR),
    (
        "huge-authorization",
        request("GET", "/", "Authorization: Basic " + "A" * 20_000),
        CLIENT_ERROR,
    ),
    (
        "huge-secret",
        request("GET", "/", f"Authorization: Bearer {CANARY}" + "A" * 9_000),
        CLIENT_ERROR,
    ),
    ("secret-with-nul", request("GET", "/", f"Authorization: Bearer {CANARY}\x00"), CLIENT_ERROR),
    # Odd paths
    ("double-slash", request("GET", "//metrics"), CLIENT_ERROR),
    ("trailing-slash", request("GET", "/metrics/"), CLIENT_ERROR),
    ("dot-segments", request("GET", "/./metrics"), OK_OR_CLIENT_ERROR),
    ("traversal", request("GET", "/../../etc/passwd"), CLIENT_ERROR),
    ("encoded-traversal", request("GET", "/%2e%2e/%2e%2e/etc/passwd"), CLIENT_ERROR),
    ("encoded-slash", request("GET", "/metrics%2F..%2F"), CLIENT_ERROR),
    ("nul-encoded", request("GET", "/metrics%00"), CLIENT_ERROR),
    ("bad-percent", request("GET", "/%zz%"), CLIENT_ERROR),
    ("invalid-utf8", request("GET", "/%ff%fe%fd"), CLIENT_ERROR),
    ("raw-unicode", request("GET", "/m\u00e9trics\U0001f600"), CLIENT_ERROR),
    ("backslashes", request("GET", "/..\\..\\windows"), CLIENT_ERROR),
    ("semicolon", request("GET", "/metrics;jsessionid=1"), CLIENT_ERROR),
    ("absolute-form", request("GET", "http://evil.example/metrics"), OK_OR_CLIENT_ERROR),
    ("asterisk", request("OPTIONS", "*"), CLIENT_ERROR),
    ("no-leading-slash", request("GET", "metrics"), CLIENT_ERROR),
    ("fragment", request("GET", "/metrics#frag"), OK_OR_CLIENT_ERROR),
    # Methods
    *[
        (f"method-{method}", request(method, "/metrics"), CLIENT_ERROR)
        for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "PROPFIND", "FOO")
    ],
    ("method-lowercase", request("get", "/metrics"), CLIENT_ERROR),
    ("method-garbage", request("G\u00ebT", "/metrics"), CLIENT_ERROR),
    ("method-connect", request("CONNECT", "evil.example:443"), CLIENT_ERROR),
    ("head", request("HEAD", "/metrics"), (200,)),
    # Queries, on the metrics path and elsewhere
    ("query-bad-percent", request("GET", "/metrics?%"), (200,)),
    ("query-invalid-utf8", request("GET", "/metrics?a=%ff%fe"), (200,)),
    ("query-many-equals", request("GET", "/metrics?a===b&&&=&name[]=x"), (200,)),
    ("query-on-landing", request("GET", "/?collect[]=x&debug=1"), (200,)),
    # Headers the handlers read
    ("accept-garbage", request("GET", "/metrics", "Accept: \u00ff/\u00ff;;q=nan"), (200,)),
    (
        "accept-future-openmetrics",
        request("GET", "/metrics", "Accept: application/openmetrics-text; version=9.9.9"),
        (200,),
    ),
    (
        "accept-encoding-garbage",
        request("GET", "/metrics", "Accept-Encoding: gzip;q=abc, *;q=-1"),
        (200,),
    ),
    *[
        (
            f"scrape-timeout-{value}",
            request("GET", "/metrics", f"X-Prometheus-Scrape-Timeout-Seconds: {value}"),
            (200,),
        )
        for value in ("nan", "-1", "0", "1e999", "inf", "abc", "")
    ],
    ("authorization-unused", request("GET", "/metrics", f"Authorization: Bearer {CANARY}"), (200,)),
    # Framing
    ("body-on-get", request("GET", "/metrics", "Content-Length: 5", body="hello"), (200,)),
    ("negative-length", request("GET", "/metrics", "Content-Length: -1"), CLIENT_ERROR),
    (
        "two-lengths",
        request("GET", "/metrics", "Content-Length: 1", "Content-Length: 2"),
        CLIENT_ERROR,
    ),
    (
        "bad-chunks",
        request("POST", "/metrics", "Transfer-Encoding: chunked", body="zz\r\n"),
        CLIENT_ERROR,
    ),
    ("header-without-colon", request("GET", "/metrics", "NoColonHere"), CLIENT_ERROR),
    ("header-with-nul", request("GET", "/metrics", "X-A: a\x00b"), CLIENT_ERROR),
    ("obs-fold", request("GET", "/metrics", "X-A: a", " folded"), CLIENT_ERROR),
    ("http-2-0", b"GET /metrics HTTP/2.0\r\nHost: x\r\n\r\n", OK_OR_CLIENT_ERROR),
    ("http-9-9", b"GET /metrics HTTP/9.9\r\nHost: x\r\n\r\n", CLIENT_ERROR),
    ("http-0-9", b"GET /metrics\r\n\r\n", OK_OR_CLIENT_ERROR),
    ("h2-preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", CLIENT_ERROR),
    ("tls-hello", bytes.fromhex("16030100a5010000a10303") + b"\x00" * 64, CLIENT_ERROR),
    ("binary", bytes(range(256)), CLIENT_ERROR),
    ("bare-lf", b"GET /metrics HTTP/1.1\nHost: x\n\n", OK_OR_CLIENT_ERROR),
]


async def send_raw(client: TestClient[Any, Any], raw: bytes) -> int | None:
    """The status the server answers `raw` with; None if it closes without one."""
    server = client.server
    reader, writer = await asyncio.open_connection(server.host, server.port)
    try:
        writer.write(raw)
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), timeout=30)
    except ConnectionResetError:
        return None
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    if not line:
        return None
    parts = line.split()
    assert parts[0].startswith(b"HTTP/"), line
    return int(parts[1])


@pytest.fixture
def hushed() -> Iterator[None]:
    """The filter the command installs on aiohttp's server log, for this test only."""
    server_log = logging.getLogger("aiohttp.server")
    before = list(server_log.filters)
    hush_malformed_requests()
    yield
    server_log.filters[:] = before


@pytest.fixture
async def exporter(simulation: Simulation, start_exporter: ExporterFactory) -> TestClient[Any, Any]:
    seed_organization(simulation)
    client = await start_exporter(**hostile_settings())
    assert (await client.get("/metrics")).status == 200
    return client


@pytest.mark.usefixtures("hushed")
@pytest.mark.parametrize("level", [logging.INFO, logging.DEBUG])
async def test_hostile_requests_get_clean_answers_and_the_server_stays_up(
    level: int, exporter: TestClient[Any, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(level)
    seen: dict[str, int | None] = {}
    for name, raw, allowed in RAW:
        status = await send_raw(exporter, raw)
        seen[name] = status
        assert status is None or status < 500, (name, status)
        assert status in allowed or (status is None and allowed is CLIENT_ERROR), (name, status)
        assert (await exporter.get("/healthz")).status == 200, f"down after {name}"
    # Refused requests are no error of the exporter's: at most one debug line each,
    # without the request's bytes (which held a credential here).
    noisy = [r for r in caplog.records if r.levelno > logging.INFO]
    assert noisy == [], [r.getMessage() for r in noisy]
    refused = [r for r in caplog.records if r.getMessage().startswith("refused a malformed")]
    assert (len(refused) > 10) is (level == logging.DEBUG)
    assert all(r.exc_info is None for r in caplog.records if r.name == "aiohttp.server")
    assert CANARY_MARK not in caplog.text
    answered = [name for name, status in seen.items() if status is not None]
    assert len(answered) >= len(RAW) - 3, seen  # a refusal is an answer, not a hang-up


@pytest.mark.parametrize("path", ["/", "/metrics", "/healthz", "/readyz", "/nope"])
async def test_error_pages_and_pages_carry_no_secret(
    path: str, exporter: TestClient[Any, Any]
) -> None:
    response = await exporter.get(path)
    text = await response.text()
    assert response.status < 500
    assert CANARY_MARK not in text + str(response.headers)
