"""Fixtures for the simulator's tests: a seeded organization served in-process."""

from __future__ import annotations

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from exporter.simulator.app import SimulatorState, create_simulator_app
from exporter.simulator.organization import Organization, OrganizationSpec, build_organization

# A fixed clock, so generated ages are exact and runs are reproducible.
NOW = 1_800_000_000
FAKE_ADMIN_KEY = "sk-admin-test-fake"


@pytest.fixture
def org() -> Organization:
    return build_organization(OrganizationSpec(seed=7, now=NOW))


@pytest.fixture
def state(org: Organization) -> SimulatorState:
    return SimulatorState(org=org)


@pytest.fixture
async def client(
    aiohttp_client: AiohttpClient, state: SimulatorState
) -> TestClient[web.Request, web.Application]:
    return await aiohttp_client(
        create_simulator_app(state), headers={"Authorization": f"Bearer {FAKE_ADMIN_KEY}"}
    )
