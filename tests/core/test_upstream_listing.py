"""What the exporter asks the Admin API, and what it makes of the answers."""

import logging
import time
from typing import Any

import pytest

from exporter.simulator.faults import Fault
from exporter.simulator.organization import SimServiceAccount
from tests.support import DAY, ExporterFactory, FakeTime, Simulation, parse_samples, sample, series


async def scrape(client: object) -> str:
    response = await client.get("/metrics")  # type: ignore[attr-defined]
    assert response.status == 200
    return str(await response.text())


def add_keys(simulation: Simulation, project_id: str, count: int, **kwargs: object) -> None:
    now = int(time.time())
    for index in range(count):
        simulation.org.add_key(project_id, f"key-{index}", created_at=now - DAY, **kwargs)  # type: ignore[arg-type]


async def test_lists_every_key_of_a_project_over_several_pages(
    simulation: Simulation, start_exporter: ExporterFactory
) -> None:
    project = simulation.org.add_project("big")
    add_keys(simulation, project.id, 250)
    samples = parse_samples(await scrape(await start_exporter()))
    assert sample(samples, "openai_project_api_keys", project_id=project.id) == 250
    assert len(series(samples, "openai_api_key_info")) == 250
    key_requests = simulation.requests_to("api_keys")
    assert len(key_requests) == 3
    assert all(q["limit"] == "100" and q["owner_project_access"] == "any" for q in key_requests)


async def test_follows_project_pages(
    simulation: Simulation, start_exporter: ExporterFactory
) -> None:
    for index in range(120):
        simulation.org.add_project(f"p{index}")
    samples = parse_samples(await scrape(await start_exporter()))
    assert len(series(samples, "openai_project_info")) == 120
    project_requests = simulation.requests_to("projects")
    assert [q.get("after") is None for q in project_requests] == [True, False]
    assert all(q["limit"] == "100" for q in project_requests)


async def test_counts_keys_whose_owner_lost_access(
    simulation: Simulation, start_exporter: ExporterFactory
) -> None:
    project = simulation.org.add_project("web")
    add_keys(simulation, project.id, 2)
    add_keys(simulation, project.id, 3, owner_project_access="inactive")
    samples = parse_samples(await scrape(await start_exporter()))
    assert sample(samples, "openai_project_api_keys", project_id=project.id) == 5
    access = [labels["owner_project_access"] for labels in series(samples, "openai_api_key_info")]
    assert sorted(access) == ["active"] * 2 + ["inactive"] * 3


async def test_service_account_owners(
    simulation: Simulation, start_exporter: ExporterFactory
) -> None:
    project = simulation.org.add_project("svc")
    bot = SimServiceAccount(id="svc_acct_bot", name="deploy bot", role="member", created_at=0)
    simulation.org.add_key(project.id, "deploy", created_at=int(time.time()) - DAY, owner=bot)
    samples = parse_samples(await scrape(await start_exporter()))
    [info] = series(samples, "openai_api_key_info")
    assert info["owner_type"] == "service_account"
    assert info["owner_id"] == "svc_acct_bot"
    assert info["owner_name"] == "deploy bot"


@pytest.mark.parametrize("include_archived", [False, True])
async def test_archived_projects_only_when_asked(
    include_archived: bool, simulation: Simulation, start_exporter: ExporterFactory
) -> None:
    simulation.org.add_project("live")
    old = simulation.org.add_project("old", archived=True)
    samples = parse_samples(
        await scrape(await start_exporter(openai_include_archived=include_archived))
    )
    statuses = {
        labels["project_id"]: labels["status"] for labels in series(samples, "openai_project_info")
    }
    assert (old.id in statuses) is include_archived
    if include_archived:
        assert statuses[old.id] == "archived"
        assert simulation.requests_to("projects")[0]["include_archived"] == "true"


async def test_project_filters_match_id_or_name(
    simulation: Simulation, start_exporter: ExporterFactory
) -> None:
    import re

    keep = simulation.org.add_project("prod-eu")
    simulation.org.add_project("sandbox")
    dropped = simulation.org.add_project("prod-test")
    client = await start_exporter(
        openai_project_include=re.compile("prod-.*"), openai_project_exclude=re.compile(".*-test")
    )
    samples = parse_samples(await scrape(client))
    assert [labels["project_id"] for labels in series(samples, "openai_project_info")] == [keep.id]
    listed = {r.path.split("/")[-2] for r in simulation.state.requests if r.endpoint == "api_keys"}
    assert listed == {keep.id}, "filtered projects must not cost key listings"
    assert dropped.id not in listed


async def test_retries_honour_retry_after(
    simulation: Simulation, start_exporter: ExporterFactory, fake_time: FakeTime
) -> None:
    project = simulation.org.add_project("web")
    add_keys(simulation, project.id, 1)
    simulation.state.faults.add(Fault("status", status=429, retry_after="7"), endpoint="api_keys")
    simulation.state.faults.add(
        Fault("status", status=503, retry_after_ms=1500), endpoint="api_keys"
    )
    samples = parse_samples(await scrape(await start_exporter()))
    assert fake_time.sleeps == [7.0, 1.5]
    assert sample(samples, "openai_project_api_keys", project_id=project.id) == 1
    assert sample(samples, "openai_up") == 1
    codes = {
        labels["code"]: sample(samples, "openai_exporter_api_requests_total", **labels)
        for labels in series(samples, "openai_exporter_api_requests_total")
        if labels["endpoint"] == "api_keys"
    }
    assert codes == {"200": 1, "429": 1, "503": 1, "error": 0}


async def test_retries_without_retry_after_back_off_exponentially(
    simulation: Simulation, start_exporter: ExporterFactory, fake_time: FakeTime
) -> None:
    simulation.org.add_project("web")
    simulation.state.faults.add(Fault("status", status=500), endpoint="projects", times=3)
    samples = parse_samples(await scrape(await start_exporter()))
    assert len(fake_time.sleeps) == 3
    for delay, ceiling in zip(fake_time.sleeps, [0.5, 1.0, 2.0], strict=True):
        assert 0.75 * ceiling <= delay <= ceiling
    assert sample(samples, "openai_up") == 1


async def test_retries_are_bounded(
    simulation: Simulation, start_exporter: ExporterFactory, fake_time: FakeTime
) -> None:
    simulation.org.add_project("web")
    simulation.state.faults.add(Fault("status", status=502), endpoint="projects", times=None)
    samples = parse_samples(await scrape(await start_exporter(openai_max_retries=2)))
    assert len(simulation.requests_to("projects")) == 3
    assert len(fake_time.sleeps) == 2
    assert sample(samples, "openai_up") == 0
    assert (
        sample(
            samples,
            "openai_exporter_refresh_errors_total",
            collector="api_keys",
            reason="server_error",
        )
        == 1
    )
    assert (
        sample(samples, "openai_exporter_refreshes_total", collector="api_keys", result="failure")
        == 1
    )


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        (Fault("wrong_shape"), "bad_response"),
        (Fault("malformed_json"), "bad_response"),
        (Fault("oversized_page"), "bad_response"),
        (Fault("repeat_cursor"), "bad_response"),
        (Fault("status", status=404), "client_error"),
        (Fault("status", status=400), "client_error"),
    ],
)
async def test_a_bad_key_page_keeps_the_project_known_and_counts_the_reason(
    fault: Fault, reason: str, simulation: Simulation, start_exporter: ExporterFactory
) -> None:
    good = simulation.org.add_project("good")
    bad = simulation.org.add_project("bad")
    add_keys(simulation, good.id, 2)
    add_keys(simulation, bad.id, 150)
    simulation.state.faults.add(fault, endpoint="api_keys", project_id=bad.id, times=None)
    samples = parse_samples(await scrape(await start_exporter()))
    assert sample(samples, "openai_project_api_keys", project_id=good.id) == 2
    assert sample(samples, "openai_project_api_keys", project_id=bad.id) is None
    assert sample(samples, "openai_up") == 0
    assert (
        sample(samples, "openai_exporter_refresh_errors_total", collector="api_keys", reason=reason)
        == 1
    )
    assert (
        sample(samples, "openai_exporter_refreshes_total", collector="api_keys", result="partial")
        == 1
    )
    bad_requests = [r for r in simulation.state.requests if bad.id in r.path]
    assert len(bad_requests) <= 2, "bad pages are not retried, and a repeated cursor stops"


async def test_refused_key_is_one_clear_log_line_without_the_key(
    simulation: Simulation, start_exporter: ExporterFactory, caplog: pytest.LogCaptureFixture
) -> None:
    simulation.org.add_project("web")
    simulation.state.accepted_admin_keys = {"sk-admin-some-other-key"}
    with caplog.at_level(logging.WARNING):
        samples = parse_samples(await scrape(await start_exporter()))
    assert (
        sample(samples, "openai_exporter_refresh_errors_total", collector="api_keys", reason="auth")
        == 1
    )
    assert len(simulation.requests_to("projects")) == 1, "a refused key is not retried"
    lines = [record.getMessage() for record in caplog.records if "auth" in record.getMessage()]
    # One line per collector, each naming what that collector needs to read.
    assert len(lines) == 5
    for line, what in zip(
        sorted(lines),
        ["admin API keys", "certificates", "invites", "Organization Administration", "users"],
        strict=True,
    ):
        assert what in line
        assert "api.management.read" in line
        assert "The API said:" in line
    assert "sk-admin-test-fake" not in caplog.text


async def test_request_timeout_is_a_timeout(
    simulation: Simulation, start_exporter: ExporterFactory
) -> None:
    project = simulation.org.add_project("slow")
    add_keys(simulation, project.id, 1)
    simulation.state.faults.add(Fault("slow", delay=2.0), endpoint="api_keys", times=None)
    client = await start_exporter(openai_request_timeout=0.2, openai_max_retries=1)
    samples = parse_samples(await scrape(client))
    assert (
        sample(
            samples, "openai_exporter_refresh_errors_total", collector="api_keys", reason="timeout"
        )
        == 1
    )
    assert (
        sample(samples, "openai_exporter_api_requests_total", endpoint="api_keys", code="error")
        == 2
    )


@pytest.mark.parametrize("kind", ["reset", "truncated"])
async def test_broken_connections_are_network_errors(
    kind: str, simulation: Simulation, start_exporter: ExporterFactory
) -> None:
    simulation.org.add_project("web")
    simulation.state.faults.add(Fault(kind), endpoint="projects", times=None)  # type: ignore[arg-type]
    samples = parse_samples(await scrape(await start_exporter(openai_max_retries=1)))
    assert (
        sample(
            samples, "openai_exporter_refresh_errors_total", collector="api_keys", reason="network"
        )
        == 1
    )
    assert sample(samples, "openai_up") == 0


async def test_a_refresh_never_outlives_its_deadline(
    simulation: Simulation, start_exporter: ExporterFactory, fake_time: FakeTime
) -> None:
    fast = simulation.org.add_project("fast")
    slow = simulation.org.add_project("slow")
    add_keys(simulation, fast.id, 1)
    add_keys(simulation, slow.id, 1)
    client = await start_exporter(openai_refresh_timeout=1.5)
    first = parse_samples(await scrape(client))
    assert sample(first, "openai_up") == 1
    simulation.org.add_key(fast.id, "late", created_at=int(time.time()))
    simulation.state.faults.add(Fault("slow", delay=5), endpoint="api_keys", project_id=slow.id)
    fake_time.monotonic_now += 301
    samples = parse_samples(await scrape(client))
    assert (
        sample(
            samples, "openai_exporter_refresh_errors_total", collector="api_keys", reason="timeout"
        )
        == 1
    )
    assert (
        sample(samples, "openai_exporter_refreshes_total", collector="api_keys", result="partial")
        == 1
    )
    assert sample(samples, "openai_project_api_keys", project_id=fast.id) == 2
    assert sample(samples, "openai_project_api_keys", project_id=slow.id) == 1
    duration = sample(samples, "openai_exporter_collector_duration_seconds", collector="api_keys")
    assert duration is not None
    assert duration < 5


async def test_a_listing_longer_than_the_page_bound_stops_with_an_error(
    simulation: Simulation,
) -> None:
    import aiohttp
    from pydantic import SecretStr

    from exporter.collectors.api_keys import API_KEYS
    from exporter.upstream.client import AdminApiClient
    from exporter.upstream.errors import UpstreamError
    from exporter.upstream.lister import list_all
    from exporter.upstream.retry import RetryPolicy

    project = simulation.org.add_project("big")
    add_keys(simulation, project.id, 250)
    async with aiohttp.ClientSession() as session:
        client = AdminApiClient(
            session,
            simulation.base_url,
            SecretStr("sk-admin-test-fake"),
            observe=lambda endpoint, code: None,
            retry=RetryPolicy(max_retries=0),
            request_timeout=5,
            max_pages=2,
        )
        with pytest.raises(UpstreamError) as caught:
            await list_all(client, API_KEYS, path_args={"project_id": project.id})
    assert caught.value.reason == "bad_response"
    assert caught.value.project_id == project.id
    assert "more than 2 pages" in str(caught.value)
    assert len(simulation.requests_to("api_keys")) == 2


async def test_a_redirect_is_not_followed_with_the_key(
    simulation: Simulation, start_exporter: ExporterFactory, aiohttp_server: Any
) -> None:
    from aiohttp import web

    seen_authorization: list[str] = []

    async def elsewhere(request: web.Request) -> web.Response:
        seen_authorization.append(request.headers.get("Authorization", ""))
        return web.json_response({"object": "list", "data": [], "has_more": False})

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPFound(str(target.make_url("/elsewhere")))

    target_app = web.Application()
    target_app.router.add_get("/elsewhere", elsewhere)
    target = await aiohttp_server(target_app)
    redirecting_app = web.Application()
    redirecting_app.router.add_get("/v1/organization/projects", redirect)
    redirecting = await aiohttp_server(redirecting_app)
    client = await start_exporter(base_url=str(redirecting.make_url("/v1")))
    samples = parse_samples(await scrape(client))
    assert seen_authorization == []
    assert (
        sample(
            samples,
            "openai_exporter_refresh_errors_total",
            collector="api_keys",
            reason="client_error",
        )
        == 1
    )
    assert (
        sample(samples, "openai_exporter_api_requests_total", endpoint="projects", code="302") == 1
    )
