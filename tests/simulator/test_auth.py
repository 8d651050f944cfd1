"""The bearer check: only admin keys pass, and no key is ever echoed back."""

from __future__ import annotations

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from exporter.simulator.app import SimulatorState, create_simulator_app

Client = TestClient[web.Request, web.Application]
PROJECTS = "/v1/organization/projects"


async def _status_and_text(client: Client, headers: dict[str, str]) -> tuple[int, str]:
    async with client.get(PROJECTS, headers=headers) as response:
        return response.status, await response.text()


@pytest.mark.parametrize(
    "authorization",
    [
        "",
        "Bearer",
        "Bearer ",
        "Basic sk-admin-test-fake",
        "sk-admin-test-fake",
        "Bearer sk-proj-test-fake-canary",
        "Bearer sk-test-fake-canary",
        "Bearer SK-ADMIN-test-fake-canary",
    ],
)
async def test_anything_but_an_admin_bearer_gets_401(client: Client, authorization: str) -> None:
    status, text = await _status_and_text(client, {"Authorization": authorization})
    assert status == 401
    assert '"type":"invalid_request_error"' in text
    assert "canary" not in text


async def test_missing_header_gets_401(
    aiohttp_client: AiohttpClient, state: SimulatorState
) -> None:
    bare = await aiohttp_client(create_simulator_app(state))
    async with bare.get(PROJECTS) as response:
        assert response.status == 401
        error = (await response.json())["error"]
    assert error["message"].startswith("You didn't provide an API key")
    assert error["param"] is None


async def test_bearer_scheme_is_case_insensitive(client: Client) -> None:
    status, _ = await _status_and_text(client, {"Authorization": "bearer sk-admin-test-fake"})
    assert status == 200


async def test_accepted_key_set_refuses_other_admin_keys(
    client: Client, state: SimulatorState
) -> None:
    state.accepted_admin_keys = {"sk-admin-test-fake-new"}
    status, text = await _status_and_text(
        client, {"Authorization": "Bearer sk-admin-test-fake-old-canary"}
    )
    assert status == 401
    assert '"code":"invalid_api_key"' in text
    assert "canary" not in text
    status, _ = await _status_and_text(client, {"Authorization": "Bearer sk-admin-test-fake-new"})
    assert status == 200


async def test_rotation_takes_effect_on_the_next_request(
    client: Client, state: SimulatorState
) -> None:
    old = {"Authorization": "Bearer sk-admin-test-fake-old"}
    state.accepted_admin_keys = {"sk-admin-test-fake-old"}
    assert (await _status_and_text(client, old))[0] == 200
    state.accepted_admin_keys = {"sk-admin-test-fake-new"}
    assert (await _status_and_text(client, old))[0] == 401
