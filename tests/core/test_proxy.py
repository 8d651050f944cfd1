"""The upstream session honours HTTP(S)_PROXY and NO_PROXY, looked up once at start."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from exporter.web.app import create_app
from tests.support import FakeTime, Simulation, exporter_settings, sample, scrape

UNREACHABLE = "http://api.openai.invalid/v1"  # only a proxy can get there


async def openai_up(client: TestClient[Any, Any]) -> float | None:
    return sample(await scrape(client, budget=5), "openai_up")


async def test_requests_go_through_the_proxy_from_the_environment(
    simulation: Simulation,
    fake_time: FakeTime,
    aiohttp_client: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The simulator serves absolute-form requests too, so it can play the proxy.
    proxy = simulation.base_url.removesuffix("/v1")
    monkeypatch.setenv("HTTP_PROXY", proxy)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    client = await aiohttp_client(
        create_app(exporter_settings(UNREACHABLE), clocks=fake_time.clocks())
    )
    assert await openai_up(client) == 1
    assert simulation.requests_to("projects")


async def test_no_proxy_exempts_the_api_host(
    simulation: Simulation,
    fake_time: FakeTime,
    aiohttp_client: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    client = await aiohttp_client(
        create_app(exporter_settings(simulation.base_url), clocks=fake_time.clocks())
    )
    assert await openai_up(client) == 1
