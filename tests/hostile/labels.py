"""Helpers for the exposition property tests: a whole
exporter (with its simulator) on a background loop that synchronous hypothesis
tests can drive example by example through real HTTP."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

import aiohttp
from aiohttp.test_utils import TestServer

from exporter.simulator.app import SimulatorState, serve_simulator
from exporter.simulator.organization import Organization
from exporter.web.app import create_app
from tests.support import FakeTime, exporter_settings

T = TypeVar("T")
OPENMETRICS = "application/openmetrics-text; version=1.0.0"


class ThreadedExporter:
    """A simulated organization and an exporter serving it, on their own event loop."""

    def __init__(self) -> None:
        self.fake_time = FakeTime()
        self.org = Organization(seed=11)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._done: Future[None] | None = None
        self._url = ""

    def __enter__(self) -> ThreadedExporter:
        self._thread.start()
        self._done = asyncio.run_coroutine_threadsafe(self._serve_until_stopped(), self._loop)
        while not self._ready.wait(0.05):
            if self._done.done():
                self._done.result()  # raises what made the start fail
                raise AssertionError("the exporter stopped before it was ready")
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._stop is not None
        assert self._done is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._done.result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)
        self._loop.close()

    async def _serve_until_stopped(self) -> None:
        self._stop = asyncio.Event()
        state = SimulatorState(org=self.org)
        async with serve_simulator(state) as base_url:
            settings = exporter_settings(base_url, metrics_owner_email=True)
            server = TestServer(create_app(settings, clocks=self.fake_time.clocks()))
            await server.start_server()
            try:
                self._session = aiohttp.ClientSession()
                self._url = str(server.make_url("/metrics"))
                # The refresh begun at start up must be over first: a scrape arriving
                # while it runs is served its result, which predates what a test adds.
                await self.scrape()
                self._ready.set()
                await self._stop.wait()
                await self._session.close()
            finally:
                await server.close()

    def call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Runs `coroutine` on the exporter's loop and waits for its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=60)

    async def scrape(self, accept: str = "") -> str:
        """A scrape after the TTL: the exporter refreshes and serves what the org holds."""
        self.fake_time.monotonic_now += 301
        headers = {"X-Prometheus-Scrape-Timeout-Seconds": "30"}
        if accept:
            headers["Accept"] = accept
        async with self._session.get(self._url, headers=headers) as response:
            assert response.status == 200
            return await response.text()
