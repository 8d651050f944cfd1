"""The short load test of CI: 50 concurrent scrapers on a 1,000-key organization,
refreshes happening under them. No failed response, and nothing grows beyond a bound
once the load is gone: tasks, file descriptors, memory, live objects.

Behaviour, never speed: the load is a number of requests, not a time. The 60-second
run with 200 clients and its figures is ``make loadtest`` (bench/loadtest.py).
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient

from exporter.simulator.organization import OrganizationSpec, build_organization
from tests.hostile.cases import RETRY_INTERVAL, TTL, hostile_settings, settle
from tests.hostile.leaks import footprint, quiesce
from tests.support import ExporterFactory, FakeTime, Simulation

CLIENTS = 50
REQUESTS_PER_CLIENT = 6
ROUNDS = 4  # a refresh before each round runs under its scrapes; the first warms up
PROMETHEUS = {
    "Accept": "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
    "Accept-Encoding": "gzip",
    "X-Prometheus-Scrape-Timeout-Seconds": "10",
}
PLAIN = {"Accept": "text/plain", "X-Prometheus-Scrape-Timeout-Seconds": "10"}
RSS_BOUND = 64 * 1024 * 1024
OBJECT_BOUND = 3_000
# The upstream connection pool may still be filling (concurrency + 2 connections, each
# with its simulator end in this same process): a bound, where a leak would be per
# request or per refresh, in the hundreds.
POOL = 8 + 2


async def _scraper(
    session: aiohttp.ClientSession, url: str, headers: dict[str, str], failures: list[str]
) -> int:
    answered = 0
    for _ in range(REQUESTS_PER_CLIENT):
        try:
            async with session.get(url, headers=headers) as response:
                body = await response.read()
        except aiohttp.ClientError as error:
            failures.append(repr(error))
            continue
        if response.status != 200 or b"openai_api_key_info{" not in body:
            failures.append(f"HTTP {response.status}")
        elif "openmetrics" in response.headers["Content-Type"] and not body.endswith(b"# EOF\n"):
            failures.append("truncated OpenMetrics")
        else:
            answered += 1
    return answered


async def _round(client: TestClient[Any, Any], failures: list[str]) -> int:
    """CLIENTS scrapers with a keep-alive connection each, closed at the end."""
    url = str(client.make_url("/metrics"))
    connector = aiohttp.TCPConnector(limit=CLIENTS)
    async with aiohttp.ClientSession(connector=connector) as session:
        answered = await asyncio.gather(
            *(
                _scraper(session, url, PLAIN if n % 5 == 4 else PROMETHEUS, failures)
                for n in range(CLIENTS)
            )
        )
    return sum(answered)


async def test_concurrent_scrapers_all_answered_and_nothing_grows(
    simulation: Simulation, start_exporter: ExporterFactory, fake_time: FakeTime
) -> None:
    simulation.state.org = build_organization(
        OrganizationSpec(seed=3, projects=50, keys_per_project=20, archived_fraction=0.0)
    )
    simulation.state.faults.latency = 0.01  # refreshes last a while: scrapes overlap them
    client = await start_exporter(**hostile_settings())
    failures: list[str] = []
    answered = 0
    start = None
    for number in range(ROUNDS):
        if number == 1:
            await asyncio.sleep(0.5)  # the warm-up's connections, closed, wind down
            start = footprint()
        fake_time.monotonic_now += TTL + RETRY_INTERVAL
        answered += await _round(client, failures)
        await settle(client)
    assert failures == []
    assert answered == ROUNDS * CLIENTS * REQUESTS_PER_CLIENT

    assert start is not None
    await quiesce(start.tasks, within=5)
    growth = footprint().growth_since(start)
    assert growth.tasks <= POOL, growth
    assert growth.fds <= 2 * POOL, growth
    assert growth.rss <= RSS_BOUND, growth
    assert growth.objects <= OBJECT_BOUND, growth
