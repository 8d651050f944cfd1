"""Shared fixtures: a clean environment, a simulated Admin API on loopback and exporters
pointed at it."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from exporter.simulator.app import SimulatorState, serve_simulator
from exporter.simulator.organization import Organization
from exporter.web.app import create_app
from tests.support import ExporterFactory, FakeTime, Simulation, exporter_settings


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No ``OPENAI_*`` variable of the developer's shell or CI reaches the settings."""
    for name in list(os.environ):
        if name.startswith("OPENAI_"):
            monkeypatch.delenv(name)


@pytest.fixture
async def simulation() -> AsyncIterator[Simulation]:
    state = SimulatorState(org=Organization(seed=1))
    async with serve_simulator(state) as base_url:
        yield Simulation(state, base_url)


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def start_exporter(
    simulation: Simulation, fake_time: FakeTime, aiohttp_client: Any
) -> ExporterFactory:
    """Starts an exporter against the simulation; keyword arguments override settings."""

    async def start(**overrides: Any) -> TestClient[Any, Any]:
        base_url = overrides.pop("base_url", simulation.base_url)
        settings = exporter_settings(base_url, **overrides)
        client: TestClient[Any, Any] = await aiohttp_client(
            create_app(settings, clocks=fake_time.clocks())
        )
        return client

    return start
