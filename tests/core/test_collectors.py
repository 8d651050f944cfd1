"""The credential collectors through a real exporter on the simulator: admin keys, members,
invites, certificates and service accounts; their switches, joins and failures."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest
from aiohttp import web

from exporter.simulator.faults import Fault
from exporter.simulator.organization import SimAdminKeyOwner, SimServiceAccount, SimUser
from tests.support import (
    DAY,
    FAKE_ADMIN_KEY,
    ExporterFactory,
    FakeTime,
    Simulation,
    sample,
    scrape,
    scrape_text,
    series,
)

NOW = int(time.time())


def admin_keys(simulation: Simulation) -> dict[str, str]:
    org = simulation.org
    owner = SimAdminKeyOwner(id="user-ops", name="Ops", created_at=NOW - 900 * DAY)
    return {
        "own": org.add_admin_key(
            "exporter", value=FAKE_ADMIN_KEY, created_at=NOW - 10 * DAY, expires_at=NOW + DAY
        ).id,
        "forever": org.add_admin_key(
            "terraform", created_at=NOW - 200 * DAY, last_used_at=NOW - DAY, owner=owner
        ).id,
        "unnamed": org.add_admin_key(None, created_at=NOW - 8 * DAY, expires_at=NOW + 30 * DAY).id,
    }


async def test_admin_keys_are_timestamps_flags_and_ages(
    simulation: Simulation, start_exporter: ExporterFactory
) -> None:
    ids = admin_keys(simulation)
    samples = await scrape(await start_exporter())
    forever = {"admin_api_key_id": ids["forever"]}
    assert sample(samples, "openai_admin_api_key_never_expires", **forever) == 1
    assert sample(samples, "openai_admin_api_key_expires_timestamp_seconds", **forever) is None
    assert sample(samples, "openai_admin_api_key_last_used_timestamp_seconds", **forever) == (
        NOW - DAY
    )
    assert sample(samples, "openai_admin_api_key_created_timestamp_seconds", **forever) == (
        NOW - 200 * DAY
    )
    age = sample(samples, "openai_admin_api_key_age_seconds", **forever)
    assert age is not None
    assert 200 * DAY <= age <= time.time() - (NOW - 200 * DAY)
    unnamed = {"admin_api_key_id": ids["unnamed"]}
    assert sample(samples, "openai_admin_api_key_never_used", **unnamed) == 1
    assert sample(samples, "openai_admin_api_key_last_used_timestamp_seconds", **unnamed) is None
    idle = sample(samples, "openai_admin_api_key_idle_seconds", **unnamed)
    assert idle is not None
    assert 8 * DAY <= idle <= time.time() - (NOW - 8 * DAY), "never used: idle since creation"
    assert sample(samples, "openai_admin_api_key_expires_timestamp_seconds", **unnamed) == (
        NOW + 30 * DAY
    )
    [info] = [s for s in series(samples, "openai_admin_api_key_info") if s == s | forever]
    assert info == {
        **forever,
        "admin_api_key_name": "terraform",
        "owner_type": "user",
        "owner_id": "user-ops",
        "owner_name": "Ops",
        "owner_role": "owner",
    }


async def test_the_exporter_knows_its_own_admin_key_and_shows_none_of_its_value(
    simulation: Simulation, start_exporter: ExporterFactory
) -> None:
    ids = admin_keys(simulation)
    text = await scrape_text(await start_exporter())
    assert f'openai_exporter_admin_api_key_info{{admin_api_key_id="{ids["own"]}"}} 1' in text
    assert "sk-admin..." not in text, "no redacted value is exported"
    assert FAKE_ADMIN_KEY not in text


async def test_no_own_key_when_two_keys_look_like_it(
    simulation: Simulation, start_exporter: ExporterFactory
) -> None:
    simulation.org.add_admin_key("a", value=FAKE_ADMIN_KEY)
    simulation.org.add_admin_key("b", value="sk-admin-other-but-also-fake")  # same "...ake" end
    samples = await scrape(await start_exporter())
    assert len(series(samples, "openai_admin_api_key_info")) == 2
    assert series(samples, "openai_exporter_admin_api_key_info") == []


def people(simulation: Simulation) -> dict[str, Any]:
    org = simulation.org
    project = org.add_project("web")
    member = org.add_member("Ada", "ada@example.com", role="owner", api_key_last_used_at=NOW)
    gone = SimUser(
        id="user-gone", name="Gone", email="gone@example.com", role="owner", created_at=0
    )
    stays = SimUser(member.id, "Ada", "ada@example.com", "owner", 0)
    bot = SimServiceAccount(id="svc_acct_bot", name="bot", role="member", created_at=0)
    keys = {
        "member": org.add_key(project.id, "kept", created_at=NOW - DAY, owner=stays).id,
        "gone": org.add_key(project.id, "orphan", created_at=NOW - DAY, owner=gone).id,
        "bot": org.add_key(project.id, "robot", created_at=NOW - DAY, owner=bot).id,
    }
    return {"project": project.id, "member": member.id, "keys": keys}


async def test_members_and_keys_whose_owner_left(
    simulation: Simulation, start_exporter: ExporterFactory
) -> None:
    seeded = people(simulation)
    samples = await scrape(await start_exporter())
    assert series(samples, "openai_user_info") == [
        {"user_id": seeded["member"], "user_name": "Ada", "role": "owner"}
    ]
    user = {"user_id": seeded["member"]}
    assert sample(samples, "openai_user_api_key_last_used_timestamp_seconds", **user) == NOW
    assert sample(samples, "openai_user_added_timestamp_seconds", **user) is not None
    owned = {
        labels["api_key_id"]: sample(samples, "openai_api_key_owner_in_organization", **labels)
        for labels in series(samples, "openai_api_key_owner_in_organization")
    }
    keys = seeded["keys"]
    assert owned == {keys["member"]: 1, keys["gone"]: 0}, "no series for service-account keys"


async def test_a_failed_users_listing_never_flags_a_key_and_keeps_the_last_members(
    simulation: Simulation, start_exporter: ExporterFactory, fake_time: FakeTime
) -> None:
    seeded = people(simulation)
    simulation.state.faults.add(Fault("status", status=500), endpoint="users", times=None)
    client = await start_exporter(openai_max_retries=0)
    first = await scrape(client)
    assert series(first, "openai_api_key_owner_in_organization") == []
    assert series(first, "openai_user_info") == []
    assert len(series(first, "openai_api_key_info")) == 3, "the keys are untouched"
    simulation.state.faults.clear()
    fake_time.monotonic_now += 61
    good = await scrape(client)
    assert len(series(good, "openai_api_key_owner_in_organization")) == 2
    simulation.state.faults.add(Fault("status", status=500), endpoint="users", times=None)
    simulation.org.remove_member(seeded["member"])  # unseen while the listing fails
    fake_time.monotonic_now += 301
    served = await scrape(client)
    assert series(served, "openai_user_info") == series(good, "openai_user_info")
    assert sample(served, "openai_exporter_collector_success", collector="users") == 0
    assert sample(served, "openai_exporter_collector_success", collector="api_keys") == 1
    assert sample(served, "openai_up") == 0
    for labels in series(good, "openai_api_key_owner_in_organization"):
        assert sample(served, "openai_api_key_owner_in_organization", **labels) == sample(
            good, "openai_api_key_owner_in_organization", **labels
        )


async def test_a_key_that_cannot_read_users_still_gives_key_metrics(
    simulation: Simulation, start_exporter: ExporterFactory, caplog: pytest.LogCaptureFixture
) -> None:
    people(simulation)
    simulation.state.faults.add(
        Fault("status", status=403, message="Missing scopes: api.users.read"),
        endpoint="users",
        times=None,
    )
    with caplog.at_level(logging.WARNING):
        samples = await scrape(await start_exporter())
    assert len(series(samples, "openai_api_key_info")) == 3
    health = {
        labels["collector"]: value
        for (name, label_set), value in samples.items()
        if name == "openai_exporter_collector_success"
        for labels in [dict(label_set)]
    }
    assert health == {
        "api_keys": 1,
        "admin_api_keys": 1,
        "users": 0,
        "invites": 1,
        "certificates": 1,
    }
    assert sample(samples, "openai_exporter_refresh_errors_total", collector="users", reason="auth")
    [line] = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert "users" in line
    assert "api.users.read" in line, "names what is missing"
    assert FAKE_ADMIN_KEY not in caplog.text


async def test_invites_and_certificates(
    simulation: Simulation, start_exporter: ExporterFactory
) -> None:
    org = simulation.org
    pending = org.add_invite("new@example.com", created_at=NOW - DAY, expires_at=NOW + 6 * DAY)
    cert = org.add_certificate("edge", valid_at=NOW - 300 * DAY, expires_at=NOW + 20 * DAY)
    off = org.add_certificate(None, expires_at=NOW - DAY, active=False)
    samples = await scrape(await start_exporter())
    [invite] = series(samples, "openai_invite_info")
    assert invite == {"invite_id": pending.id, "role": "reader", "status": "pending"}
    ids = {"invite_id": pending.id}
    assert sample(samples, "openai_invite_created_timestamp_seconds", **ids) == NOW - DAY
    assert sample(samples, "openai_invite_expires_timestamp_seconds", **ids) == NOW + 6 * DAY
    by_id = {
        labels["certificate_id"]: labels for labels in series(samples, "openai_certificate_info")
    }
    assert by_id == {
        cert.id: {"certificate_id": cert.id, "certificate_name": "edge", "active": "true"},
        off.id: {"certificate_id": off.id, "certificate_name": "", "active": "false"},
    }
    c = {"certificate_id": cert.id}
    assert sample(samples, "openai_certificate_not_before_timestamp_seconds", **c) == (
        NOW - 300 * DAY
    )
    assert sample(samples, "openai_certificate_not_after_timestamp_seconds", **c) == NOW + 20 * DAY


async def test_the_email_setting_adds_every_email_label(
    simulation: Simulation, start_exporter: ExporterFactory
) -> None:
    people(simulation)
    simulation.org.add_invite("new@example.com")
    samples = await scrape(await start_exporter(metrics_owner_email=True))
    assert series(samples, "openai_user_info")[0]["user_email"] == "ada@example.com"
    assert series(samples, "openai_invite_info")[0]["invite_email"] == "new@example.com"
    emails = {labels["owner_email"] for labels in series(samples, "openai_api_key_info")}
    assert "gone@example.com" in emails


async def test_service_accounts_per_active_project_only_when_switched_on(
    simulation: Simulation, start_exporter: ExporterFactory
) -> None:
    org = simulation.org
    live = org.add_project("live")
    org.add_service_account(live.id, "deployer", role="owner", created_at=NOW - DAY)
    org.add_project("old", archived=True)
    off = await scrape(await start_exporter())
    assert series(off, "openai_service_account_info") == []
    assert not [
        labels
        for labels in series(off, "openai_exporter_collector_success")
        if labels["collector"] == "service_accounts"
    ], "off: no health series either"
    assert simulation.requests_to("service_accounts") == []
    samples = await scrape(
        await start_exporter(
            enabled_collectors=("api_keys", "service_accounts"), openai_include_archived=True
        )
    )
    [account] = series(samples, "openai_service_account_info")
    assert account["project_id"] == live.id
    assert (account["service_account_name"], account["role"]) == ("deployer", "owner")
    assert sample(samples, "openai_project_service_accounts", project_id=live.id) == 1
    ids = {"project_id": live.id, "service_account_id": account["service_account_id"]}
    assert sample(samples, "openai_service_account_created_timestamp_seconds", **ids) == NOW - DAY
    assert len(simulation.requests_to("service_accounts")) == 1, "the archived one is not asked"
    assert sample(samples, "openai_up") == 1


async def test_a_switched_off_collector_has_no_series_and_sends_no_request(
    simulation: Simulation, start_exporter: ExporterFactory
) -> None:
    admin_keys(simulation)
    samples = await scrape(await start_exporter(enabled_collectors=("api_keys",)))
    names = {name for name, _ in samples}
    assert not any(name.startswith(("openai_admin_api_key", "openai_user_")) for name in names)
    collectors = {
        labels["collector"] for labels in series(samples, "openai_exporter_refreshes_total")
    }
    assert collectors == {"api_keys"}
    endpoints = {
        labels["endpoint"] for labels in series(samples, "openai_exporter_api_requests_total")
    }
    assert endpoints == {"projects", "api_keys"}
    assert simulation.requests_to("admin_api_keys") == []
    assert sample(samples, "openai_up") == 1


async def test_unknown_enum_values_become_label_values(
    start_exporter: ExporterFactory, aiohttp_server: Any
) -> None:
    def page(*items: dict[str, Any]) -> dict[str, Any]:
        return {"object": "list", "data": list(items), "has_more": False}

    bodies = {
        "/v1/organization/projects": page(),
        "/v1/organization/admin_api_keys": page(
            {
                "object": "organization.admin_api_key",
                "id": "key_new",
                "name": "n",
                "redacted_value": "sk-admin...xyz",
                "created_at": NOW,
                "expires_at": None,
                "owner": {"type": "workload_identity", "id": "wi_1", "role": "auditor"},
            }
        ),
        "/v1/organization/users": page(
            {"object": "organization.user", "id": "user-1", "role": "billing_admin", "added_at": 1}
        ),
        "/v1/organization/invites": page(
            {
                "object": "organization.invite",
                "id": "invite-1",
                "email": "x@example.com",
                "role": "auditor",
                "status": "revoked",
                "created_at": NOW,
                "projects": [],
            }
        ),
        "/v1/organization/certificates": page(),
    }

    async def serve(request: web.Request) -> web.Response:
        return web.json_response(bodies[request.path])

    app = web.Application()
    for path in bodies:
        app.router.add_get(path, serve)
    server = await aiohttp_server(app)
    samples = await scrape(await start_exporter(base_url=str(server.make_url("/v1"))))
    assert sample(samples, "openai_up") == 1
    [admin] = series(samples, "openai_admin_api_key_info")
    assert (admin["owner_type"], admin["owner_role"]) == ("workload_identity", "auditor")
    assert series(samples, "openai_user_info")[0]["role"] == "billing_admin"
    [invite] = series(samples, "openai_invite_info")
    assert (invite["role"], invite["status"]) == ("auditor", "revoked")


async def test_ready_once_every_collector_has_tried_and_one_has_data(
    simulation: Simulation, start_exporter: ExporterFactory
) -> None:
    simulation.state.faults.add(Fault("status", status=503), endpoint="users", times=None)
    client = await start_exporter(openai_max_retries=0)
    await scrape(client)
    assert (await client.get("/readyz")).status == 200, "a failing users listing is not fatal"
