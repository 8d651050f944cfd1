"""The HTTP surface: endpoints, content negotiation, caching seen from a scrape."""

import asyncio
import gzip
import time
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from exporter import __version__
from exporter.collectors.catalog import COLLECTOR_NAMES
from exporter.simulator.faults import Fault
from tests.support import (
    CONTRACT,
    DAY,
    FAKE_ADMIN_KEY,
    ExporterFactory,
    FakeTime,
    Simulation,
    parse_samples,
    sample,
    series,
)

Client = TestClient[Any, Any]


def seed(simulation: Simulation, projects: int = 2, keys: int = 3) -> list[str]:
    now = int(time.time())
    ids = []
    for p in range(projects):
        project = simulation.org.add_project(f"project-{p}")
        ids.append(project.id)
        for k in range(keys):
            simulation.org.add_key(project.id, f"key-{k}", created_at=now - (k + 1) * DAY)
    return ids


async def metrics_of(client: Client, **headers: str) -> dict[Any, float]:
    response = await client.get("/metrics", headers=headers)
    assert response.status == 200
    return parse_samples(await response.text())


async def test_landing_page_names_the_exporter_and_links_to_metrics(
    simulation: Simulation, start_exporter: ExporterFactory
) -> None:
    seed(simulation)
    client = await start_exporter()
    await metrics_of(client)
    response = await client.get("/")
    assert response.status == 200
    assert response.content_type == "text/html"
    page = await response.text()
    assert "OpenAI Key Exporter" in page
    assert __version__ in page
    assert 'href="/metrics"' in page
    assert "<th>api_keys</th><td>2 projects, 6 keys</td>" in page
    assert "Enabled collectors: api_keys" in page
    assert "Demo mode" not in page


async def test_landing_page_shows_the_last_error_escaped(
    simulation: Simulation, start_exporter: ExporterFactory
) -> None:
    simulation.state.faults.add(
        Fault("status", status=400, message="<script>bad</script>"), endpoint="projects"
    )
    client = await start_exporter()
    await metrics_of(client)
    page = await (await client.get("/")).text()
    assert "client_error" in page
    assert "&lt;script&gt;" in page
    assert "<script>" not in page


async def test_custom_telemetry_path(
    simulation: Simulation, start_exporter: ExporterFactory
) -> None:
    client = await start_exporter(web_telemetry_path="/probe/metrics")
    assert (await client.get("/probe/metrics")).status == 200
    assert (await client.get("/metrics")).status == 404
    assert 'href="/probe/metrics"' in await (await client.get("/")).text()


async def test_unknown_paths_404_and_wrong_methods_405(
    simulation: Simulation, start_exporter: ExporterFactory
) -> None:
    client = await start_exporter()
    assert (await client.get("/nope")).status == 404
    assert (await client.get("/metrics/../../etc/passwd")).status == 404
    assert (await client.post("/metrics", data=b"x")).status == 405
    assert (await client.delete("/")).status == 405
    assert (await client.get("/metrics?x=%ff&y")).status == 200


async def test_healthz_never_depends_on_openai(
    simulation: Simulation, start_exporter: ExporterFactory
) -> None:
    simulation.state.faults.add(Fault("status", status=500), endpoint="projects", times=None)
    client = await start_exporter(openai_max_retries=0)
    await metrics_of(client)
    response = await client.get("/healthz")
    assert response.status == 200


async def test_readyz_waits_for_the_first_snapshot(
    simulation: Simulation, start_exporter: ExporterFactory
) -> None:
    seed(simulation)
    simulation.state.faults.add(Fault("slow", delay=0.5), endpoint="projects")
    client = await start_exporter()
    assert (await client.get("/readyz")).status == 503
    await client.get("/metrics", headers={"X-Prometheus-Scrape-Timeout-Seconds": "10"})
    assert (await client.get("/readyz")).status == 200


async def test_openmetrics_when_asked(
    simulation: Simulation, start_exporter: ExporterFactory
) -> None:
    seed(simulation)
    client = await start_exporter()
    response = await client.get(
        "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
    )
    assert response.headers["Content-Type"].startswith("application/openmetrics-text")
    body = await response.text()
    assert body.endswith("# EOF\n")
    assert "openai_exporter_refreshes_total" in body
    plain = await client.get("/metrics", headers={"Accept": "text/plain"})
    assert plain.headers["Content-Type"].startswith("text/plain; version=0.0.4")


async def test_gzip_when_accepted(simulation: Simulation, start_exporter: ExporterFactory) -> None:
    seed(simulation)
    client = await start_exporter()
    response = await client.get(
        "/metrics", headers={"Accept-Encoding": "gzip"}, auto_decompress=False
    )
    assert response.headers["Content-Encoding"] == "gzip"
    text = gzip.decompress(await response.read()).decode()
    assert "openai_project_api_keys" in text
    plain = await client.get(
        "/metrics", headers={"Accept-Encoding": "identity"}, auto_decompress=False
    )
    assert "Content-Encoding" not in plain.headers
    assert "openai_project_api_keys" in await plain.text()


async def test_a_fresh_snapshot_costs_no_upstream_request(
    simulation: Simulation, start_exporter: ExporterFactory, fake_time: FakeTime
) -> None:
    seed(simulation)
    client = await start_exporter(cache_ttl=300)
    await metrics_of(client)
    before = len(simulation.state.requests)
    for _ in range(5):
        fake_time.monotonic_now += 50
        await metrics_of(client)
    assert len(simulation.state.requests) == before


async def test_deleted_keys_and_projects_disappear_at_the_next_refresh(
    simulation: Simulation, start_exporter: ExporterFactory, fake_time: FakeTime
) -> None:
    first, second = seed(simulation)
    client = await start_exporter(cache_ttl=300)
    samples = await metrics_of(client)
    doomed = series(samples, "openai_api_key_info")[0]
    simulation.org.delete_key(doomed["project_id"], doomed["api_key_id"])
    simulation.org.delete_project(second)
    fake_time.monotonic_now += 301
    samples = await metrics_of(client)
    key_ids = {labels["api_key_id"] for labels in series(samples, "openai_api_key_info")}
    assert doomed["api_key_id"] not in key_ids
    assert len(key_ids) == 2
    for name in ("openai_api_key_age_seconds", "openai_api_key_idle_seconds"):
        assert {labels["api_key_id"] for labels in series(samples, name)} == key_ids
    assert {labels["project_id"] for labels in series(samples, "openai_project_info")} == {first}


async def test_when_the_project_list_fails_the_whole_last_snapshot_stays(
    simulation: Simulation, start_exporter: ExporterFactory, fake_time: FakeTime
) -> None:
    seed(simulation)
    client = await start_exporter(openai_max_retries=0)
    good = await metrics_of(client)
    simulation.state.faults.add(Fault("status", status=503), endpoint="projects", times=None)
    fake_time.monotonic_now += 301
    served = await metrics_of(client)
    assert sample(served, "openai_up") == 0
    for name in ("openai_project_info", "openai_api_key_info", "openai_project_api_keys"):
        assert series(served, name) == series(good, name)
    assert (
        sample(served, "openai_exporter_refreshes_total", collector="api_keys", result="failure")
        == 1
    )
    success_time = sample(
        served, "openai_exporter_collector_last_success_timestamp_seconds", collector="api_keys"
    )
    assert success_time == sample(
        good, "openai_exporter_collector_last_success_timestamp_seconds", collector="api_keys"
    )
    simulation.state.faults.clear()
    fake_time.monotonic_now += 61  # the retry interval, not the whole TTL
    recovered = await metrics_of(client)
    assert sample(recovered, "openai_up") == 1


async def test_a_failed_project_listing_keeps_its_last_good_keys(
    simulation: Simulation, start_exporter: ExporterFactory, fake_time: FakeTime
) -> None:
    first, second = seed(simulation)
    client = await start_exporter(openai_max_retries=0)
    await metrics_of(client)
    simulation.org.add_key(first, "new", created_at=int(time.time()))
    simulation.state.faults.add(
        Fault("status", status=500), endpoint="api_keys", project_id=second, times=None
    )
    fake_time.monotonic_now += 301
    samples = await metrics_of(client)
    assert sample(samples, "openai_project_api_keys", project_id=first) == 4
    assert sample(samples, "openai_project_api_keys", project_id=second) == 3
    assert (
        sample(samples, "openai_exporter_refreshes_total", collector="api_keys", result="partial")
        == 1
    )
    assert sample(samples, "openai_up") == 0


async def test_concurrent_scrapes_on_an_expired_cache_cause_one_refresh(
    simulation: Simulation, start_exporter: ExporterFactory, fake_time: FakeTime
) -> None:
    seed(simulation, projects=5)
    client = await start_exporter()
    await metrics_of(client)
    one_refresh = len(simulation.state.requests)
    # api_keys: one project page and five key listings; admin_api_keys, users, invites,
    # certificates: one page each.
    assert one_refresh == 10
    fake_time.monotonic_now += 301
    simulation.state.faults.latency = 0.05
    results = await asyncio.gather(*(metrics_of(client) for _ in range(50)))
    assert len(simulation.state.requests) == 2 * one_refresh
    assert all(
        sample(r, "openai_exporter_refreshes_total", collector="api_keys", result="success") == 2
        for r in results
    )


async def test_a_scrape_never_waits_past_its_timeout(
    simulation: Simulation, start_exporter: ExporterFactory, fake_time: FakeTime
) -> None:
    seed(simulation)
    client = await start_exporter(scrape_timeout_margin=0.1)
    good = await metrics_of(client)
    simulation.state.faults.add(Fault("slow", delay=30), endpoint="projects")
    fake_time.monotonic_now += 301
    served = await asyncio.wait_for(
        metrics_of(client, **{"X-Prometheus-Scrape-Timeout-Seconds": "0.3"}), timeout=10
    )
    assert series(served, "openai_api_key_info") == series(good, "openai_api_key_info")


async def test_admin_key_file_is_reread_at_each_refresh(
    simulation: Simulation, start_exporter: ExporterFactory, fake_time: FakeTime, tmp_path: Path
) -> None:
    seed(simulation)
    key_file = tmp_path / "admin-key"
    key_file.write_text("sk-admin-test-first\n")
    simulation.state.accepted_admin_keys = {"sk-admin-test-first"}
    client = await start_exporter(admin_key=None, admin_key_file=key_file)
    assert sample(await metrics_of(client), "openai_up") == 1
    key_file.write_text("sk-admin-test-second\n")
    simulation.state.accepted_admin_keys = {"sk-admin-test-second"}
    fake_time.monotonic_now += 301
    assert sample(await metrics_of(client), "openai_up") == 1
    key_file.unlink()
    fake_time.monotonic_now += 301
    samples = await metrics_of(client)
    assert sample(samples, "openai_up") == 0
    assert (
        sample(samples, "openai_exporter_refresh_errors_total", collector="api_keys", reason="auth")
        == 1
    )
    assert len(series(samples, "openai_api_key_info")) == 6


async def test_every_error_reason_and_result_exists_from_the_start(
    simulation: Simulation, start_exporter: ExporterFactory
) -> None:
    samples = await metrics_of(await start_exporter())
    reasons = {
        labels["reason"] for labels in series(samples, "openai_exporter_refresh_errors_total")
    }
    assert reasons == {
        "auth",
        "rate_limited",
        "timeout",
        "server_error",
        "client_error",
        "network",
        "bad_response",
    }
    results = {labels["result"] for labels in series(samples, "openai_exporter_refreshes_total")}
    assert results == {"success", "partial", "failure"}
    codes = {
        (labels["endpoint"], labels["code"])
        for labels in series(samples, "openai_exporter_api_requests_total")
    }
    assert {("projects", "429"), ("api_keys", "429"), ("api_keys", "error")} <= codes
    assert not [name for name, _ in samples if name.endswith("_created")]
    [build] = series(samples, "openai_exporter_build_info")
    assert build["version"] == __version__


async def test_a_scrape_exposes_exactly_the_documented_metrics(
    simulation: Simulation, start_exporter: ExporterFactory
) -> None:
    org = simulation.org
    project = org.add_project("web")
    now = int(time.time())
    used = org.add_key(project.id, "used", created_at=now - DAY, last_used_at=now)
    org.add_key(project.id, "never", created_at=now - DAY)
    org.add_service_account(project.id, "deploy bot")
    for source, amounts in (
        ("completions", {"input_tokens": 90, "input_cached_tokens": 10, "output_tokens": 20}),
        ("embeddings", {"input_tokens": 40}),
        ("images", {"images": 2}),
        ("audio_speeches", {"characters": 300}),
        ("audio_transcriptions", {"seconds": 30}),
    ):
        org.use_key(project.id, used.id, at=now - 60, source=source, requests=2, **amounts)  # type: ignore[arg-type]
    org.set_spend_limit(100_000)
    org.set_project_spend_limit(project.id, 10_000, enforcing=True)
    org.add_spend_alert(80_000)
    org.add_project_spend_alert(project.id, 5_000)
    org.add_admin_key("ci", value=FAKE_ADMIN_KEY, expires_at=now + DAY, last_used_at=now)
    org.add_member("Ada", "ada@example.com", api_key_last_used_at=now)
    org.add_invite("new@example.com", expires_at=now + DAY)
    org.add_certificate("edge", expires_at=now + DAY)
    org.audit_key_created(project.id, used.id, ["api.model.request"], effective_at=now - DAY)
    every_collector = tuple(COLLECTOR_NAMES)
    samples = await metrics_of(await start_exporter(enabled_collectors=every_collector))
    names = {name.removesuffix("_total") for name, _ in samples}
    assert names == {name.removesuffix("_total") for name in CONTRACT}


async def test_landing_page_says_when_a_collector_serves_part_of_an_earlier_refresh(
    simulation: Simulation, start_exporter: ExporterFactory, fake_time: FakeTime
) -> None:
    first, _ = seed(simulation)
    client = await start_exporter()
    await metrics_of(client)
    simulation.state.faults.add(
        Fault("status", status=500), endpoint="api_keys", project_id=first, times=None
    )
    fake_time.monotonic_now += 301
    await metrics_of(client, **{"X-Prometheus-Scrape-Timeout-Seconds": "10"})
    page = await (await client.get("/")).text()
    assert "2 projects, 6 keys (part from an earlier refresh)" in page
    assert "partial" in page
