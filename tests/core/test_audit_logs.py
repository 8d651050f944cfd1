"""The audit_logs collector through a real exporter on the simulator's audit log.

Events are injected while the exporter polls (several a second, late ones with an older
``effective_at``, pages split inside a second, unknown types), with retried requests and
failed polls in between: the counters must end at the events since the start, each once,
and each newly counted event logged once. Also: the backfill, a restart, the page bound,
the scope series, audit logging off, and the log lines' fields.
"""

from __future__ import annotations

import json
import logging
import random
from collections import Counter
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from exporter.collectors.audit_logs import AUDIT_LOGS, ApiAuditEvent
from exporter.collectors.audit_state import ACTOR_TYPES, ALERTED_TYPES
from exporter.logs import AUDIT_LOGGER, AuditEventFormatter
from exporter.simulator.audit import SimAuditEvent
from exporter.simulator.faults import Fault
from exporter.simulator.organization import Organization
from tests.support import (
    DAY,
    ExporterFactory,
    FakeTime,
    Samples,
    Simulation,
    assert_promtool_accepts,
    sample,
    scrape,
    scrape_text,
    series,
)

START = 1_767_225_600 + 9 * 3600 + 1234  # 2026-01-01 09:20:34 UTC
INTERVAL = 60
OVERLAP = 600
TYPES = ("api_key.created", "login.failed", "user.added", "login.succeeded", "brand.new_type")
EVENTS_TOTAL = "openai_audit_events_total"
CounterKey = tuple[str, str, str]


@pytest.fixture
def clocked(simulation: Simulation, fake_time: FakeTime) -> FakeTime:
    fake_time.wall_now = START
    simulation.state.clock = fake_time.wall
    return fake_time


async def start_audit(start_exporter: ExporterFactory, **overrides: Any) -> TestClient[Any, Any]:
    values: dict[str, Any] = {
        "enabled_collectors": ("audit_logs",),
        "audit_interval": INTERVAL,
        "cache_ttl": INTERVAL,
        **overrides,
    }
    return await start_exporter(**values)


def actor_type(event: SimAuditEvent) -> str:
    return "none" if event.actor is None else event.actor.kind


def counters(samples: Samples) -> dict[CounterKey, float]:
    return {
        (labels["event_type"], labels["project_id"], labels["actor_type"]): value
        for (name, frozen), value in samples.items()
        if name == EVENTS_TOTAL
        for labels in (dict(frozen),)
    }


def truth(org: Organization, since: int) -> dict[CounterKey, float]:
    """What the counters must hold: every event at or after ``since``, and the alerted
    types at 0 for every actor type without a project."""
    counted = Counter(
        (e.type, e.project_id or "", actor_type(e))
        for e in org.audit_events()
        if e.effective_at >= since
    )
    expected: dict[CounterKey, float] = {
        (event_type, "", actor): 0 for event_type in ALERTED_TYPES for actor in ACTOR_TYPES
    }
    expected.update({key: float(value) for key, value in counted.items()})
    return expected


def logged_ids(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.audit_event["id"] for r in caplog.records if r.name == AUDIT_LOGGER]  # type: ignore[attr-defined]


def inject(
    org: Organization, rng: random.Random, now: int, projects: list[str], count: int
) -> None:
    """``count`` events over the last interval, bunched in a few seconds; a fifth of
    them late (an ``effective_at`` up to 8 minutes back)."""
    seconds = [now - rng.randrange(1, INTERVAL) for _ in range(3)]
    for _ in range(count):
        at = rng.choice(seconds)
        if rng.random() < 0.2:
            at = now - rng.randrange(INTERVAL, 480)
        org.record_audit_event(
            rng.choice(TYPES),
            effective_at=at,
            project_id=rng.choice([None, *projects]),
            actor=rng.choice(["session", "user_api_key", "service_account_api_key", None]),
        )


async def test_each_event_since_the_start_is_counted_once_through_faults_late_events_and_pages(
    simulation: Simulation,
    start_exporter: ExporterFactory,
    clocked: FakeTime,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    org, state = simulation.org, simulation.state
    projects = [org.add_project(name, created_at=START - 90 * DAY).id for name in ("a", "b")]
    rng = random.Random(11)
    for _ in range(150):  # history: learned, never counted
        org.record_audit_event(rng.choice(TYPES), effective_at=START - rng.randrange(1, 3 * DAY))
    client = await start_audit(start_exporter, audit_log_events=True)
    previous = counters(await scrape(client))
    assert previous == truth(org, START) == truth(Organization(), START), "history uncounted"
    failed = retried = 0
    for poll in range(40):
        clocked.advance(INTERVAL)
        now = int(clocked.wall())
        # Now and then more than a page (100) of new events in one poll.
        inject(org, rng, now, projects, rng.choice([0, 3, 8, 20, 140 if poll % 7 == 0 else 5]))
        org.record_audit_event("login.failed", effective_at=START - 30)  # late, before start
        plan = poll % 6
        if plan == 0:  # the first page fails for good (its retries exhausted)
            state.faults.add(Fault("status", status=503), endpoint="audit_logs", times=5)
            failed += 1
        elif plan == 2:  # a later page fails: page 1 read, then a repeated cursor
            state.faults.add(Fault("repeat_cursor"), endpoint="audit_logs", times=2)
            failed += 1
        elif plan in (3, 5):  # retried once, then answered
            status = 500 if plan == 3 else 429
            state.faults.add(Fault("status", status=status), endpoint="audit_logs", times=1)
            retried += 1
        current = counters(await scrape(client))
        for key, value in previous.items():
            assert current[key] >= value, f"{key} went down"
        previous = current
        state.faults.clear()
    assert failed >= 4
    assert retried >= 4
    clocked.advance(INTERVAL)
    final = await scrape(client)
    assert counters(final) == truth(org, START)
    since_start = [e.id for e in org.audit_events() if e.effective_at >= START]
    assert sorted(logged_ids(caplog)) == sorted(since_start), "each counted event logged once"
    assert sample(final, "openai_exporter_collector_success", collector="audit_logs") == 1
    assert sum(1 for q in simulation.requests_to("audit_logs") if "after" in q) > 5, "paged"
    held = sample(
        final, EVENTS_TOTAL, event_type="brand.new_type", project_id="", actor_type="none"
    )
    assert (held or 0) > 0, "an unknown type is counted under its own name"


async def test_the_first_poll_backfills_and_later_polls_re_read_the_overlap(
    simulation: Simulation, start_exporter: ExporterFactory, clocked: FakeTime
) -> None:
    org = simulation.org
    org.record_audit_event("login.failed", effective_at=START - 2 * DAY)
    client = await start_audit(start_exporter)
    first = await scrape(client)
    [backfill] = simulation.requests_to("audit_logs")
    assert backfill == {"limit": "100", "effective_at[gt]": str(START - 7 * DAY)}
    assert (
        sample(first, "openai_audit_last_event_timestamp_seconds", event_type="login.failed")
        == START - 2 * DAY
    )
    assert (
        sample(first, EVENTS_TOTAL, event_type="login.failed", project_id="", actor_type="session")
        == 0
    )
    clocked.advance(INTERVAL)
    await scrape(client)
    assert simulation.requests_to("audit_logs")[-1]["effective_at[gt]"] == str(START - OVERLAP)
    org.record_audit_event("login.failed", effective_at=START + 90)
    clocked.advance(INTERVAL)
    counted = await scrape(client)
    assert (
        sample(
            counted, EVENTS_TOTAL, event_type="login.failed", project_id="", actor_type="session"
        )
        == 1
    )
    clocked.advance(INTERVAL)
    await scrape(client)
    assert simulation.requests_to("audit_logs")[-1]["effective_at[gt]"] == str(START + 90 - OVERLAP)


async def test_a_restart_counts_nothing_from_before_and_learns_the_scopes_again(
    simulation: Simulation, start_exporter: ExporterFactory, clocked: FakeTime
) -> None:
    org = simulation.org
    project = org.add_project("p", created_at=START - 90 * DAY).id
    first = await start_audit(start_exporter)
    await scrape(first)
    org.audit_key_created(
        project, "key_one", ["api.model.request", "api.model.read"], effective_at=START + 5
    )
    org.record_audit_event("login.failed", effective_at=START + 6, actor=None)
    clocked.advance(INTERVAL)
    before = counters(await scrape(first))
    assert before[("api_key.created", project, "session")] == 1
    clocked.advance(INTERVAL)
    restarted = await start_audit(start_exporter)
    samples = await scrape(restarted)
    assert counters(samples) == truth(Organization(), 0), "a new process starts at zero"
    assert series(samples, "openai_api_key_scopes_info") == [
        {
            "project_id": project,
            "api_key_id": "key_one",
            "scopes": "api.model.read,api.model.request",
        }
    ]
    org.record_audit_event("login.failed", effective_at=int(clocked.wall()) + 1, actor=None)
    clocked.advance(INTERVAL)
    after = counters(await scrape(restarted))
    assert after[("login.failed", "", "none")] == 1, "only the event after the restart"


async def test_a_backfill_cut_by_its_page_bound_says_so_and_counting_starts(
    simulation: Simulation,
    start_exporter: ExporterFactory,
    clocked: FakeTime,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    org = simulation.org
    project = org.add_project("p", created_at=START - 90 * DAY).id
    org.audit_key_created(project, "key_old", ["api.model.read"], effective_at=START - 3 * DAY)
    for n in range(250):
        org.record_audit_event("login.succeeded", effective_at=START - 3600 + n)
    org.audit_key_created(project, "key_new", [], effective_at=START - 10)
    client = await start_audit(start_exporter, audit_backfill_max_pages=2)
    samples = await scrape(client)
    assert len(simulation.requests_to("audit_logs")) == 2
    assert sample(samples, "openai_exporter_collector_success", collector="audit_logs") == 1
    [line] = [
        r.getMessage()
        for r in caplog.records
        if "page" in r.getMessage() and "backfill" in r.getMessage()
    ]
    assert "bound of 2 pages" in line
    keys = {s["api_key_id"]: s["scopes"] for s in series(samples, "openai_api_key_scopes_info")}
    assert keys == {"key_new": ""}, "the newest pages only; key_new is unrestricted"
    org.record_audit_event("login.succeeded", effective_at=START + 1)
    clocked.advance(INTERVAL)
    after = counters(await scrape(client))
    assert after[("login.succeeded", "", "session")] == 1


async def test_scopes_follow_created_updated_and_deleted_keys(
    simulation: Simulation, start_exporter: ExporterFactory, clocked: FakeTime
) -> None:
    org = simulation.org
    project = org.add_project("p", created_at=START - 90 * DAY).id
    client = await start_audit(start_exporter)
    await scrape(client)
    org.audit_key_created(project, "key_a", ["api.model.request"], effective_at=START + 1)
    org.audit_key_created(project, "key_b", ["api.files.write"], effective_at=START + 2)
    org.audit_key_created(project, "key_c", [], effective_at=START + 3)
    org.audit_key_updated(
        project, "key_a", ["api.responses.write", "api.model.read"], effective_at=START + 10
    )
    org.record_audit_event(
        "api_key.updated",
        effective_at=START + 11,
        project_id=project,
        details={"id": "key_b", "changes_requested": {}},
    )
    org.audit_key_deleted(project, "key_c", effective_at=START + 12)
    clocked.advance(INTERVAL)
    await scrape(client)
    # Late and older than what is known: ignored (counted all the same).
    org.audit_key_updated(project, "key_a", ["api.model.request"], effective_at=START + 5)
    org.audit_key_created(project, "key_c", ["api.model.read"], effective_at=START + 4)
    clocked.advance(INTERVAL)
    samples = await scrape(client)
    keys = {s["api_key_id"]: s for s in series(samples, "openai_api_key_scopes_info")}
    assert keys == {
        "key_a": {
            "project_id": project,
            "api_key_id": "key_a",
            "scopes": "api.model.read,api.responses.write",
        },
        "key_b": {"project_id": project, "api_key_id": "key_b", "scopes": "api.files.write"},
    }
    assert (
        sample(
            samples,
            EVENTS_TOTAL,
            event_type="api_key.updated",
            project_id=project,
            actor_type="session",
        )
        == 3
    )


async def test_audit_logging_off_fails_the_collector_alone_with_one_line_saying_so(
    simulation: Simulation,
    start_exporter: ExporterFactory,
    clocked: FakeTime,
    caplog: pytest.LogCaptureFixture,
) -> None:
    simulation.org.audit_logging = False
    client = await start_audit(start_exporter, enabled_collectors=("api_keys", "audit_logs"))
    samples = await scrape(client)
    assert sample(samples, "openai_exporter_collector_success", collector="audit_logs") == 0
    assert sample(samples, "openai_exporter_collector_success", collector="api_keys") == 1
    assert sample(samples, "openai_up") == 1, "openai_up is the rest's"
    assert (
        sample(
            samples, "openai_exporter_refresh_errors_total", collector="audit_logs", reason="auth"
        )
        == 1
    )
    assert series(samples, EVENTS_TOTAL) == []
    [line] = [r.getMessage() for r in caplog.records if "audit_logs" in r.getMessage()]
    assert "Audit logging is not enabled for this organization." in line, "the API's message"
    assert "Data controls" in line
    assert "cannot be undone" in line
    assert "--no-collector.audit_logs" in line
    simulation.org.audit_logging = True
    clocked.advance(INTERVAL)
    recovered = await scrape(client)
    assert sample(recovered, "openai_exporter_collector_success", collector="audit_logs") == 1


async def test_a_bad_page_fails_the_poll_and_moves_no_counter(
    simulation: Simulation, start_exporter: ExporterFactory, clocked: FakeTime
) -> None:
    org = simulation.org
    client = await start_audit(start_exporter)
    await scrape(client)
    org.record_audit_event("login.failed", effective_at=START + 1)
    simulation.state.faults.add(Fault("wrong_shape"), endpoint="audit_logs", times=1)
    clocked.advance(INTERVAL)
    failed = await scrape(client)
    assert (
        sample(
            failed,
            "openai_exporter_refresh_errors_total",
            collector="audit_logs",
            reason="bad_response",
        )
        == 1
    )
    assert counters(failed)[("login.failed", "", "session")] == 0
    clocked.advance(INTERVAL)  # the retry interval is the TTL's minute
    assert counters(await scrape(client))[("login.failed", "", "session")] == 1


def test_a_malformed_event_is_a_bad_page_and_a_strange_detail_is_ignored() -> None:
    envelope = {"object": "list", "has_more": False}
    for broken in (
        {"type": "x", "effective_at": 1},
        {"id": "a", "effective_at": 1},
        {"id": "a", "type": "x", "effective_at": "1"},
    ):
        with pytest.raises(ValueError, match="validation error"):
            AUDIT_LOGS.page_model.model_validate_json(json.dumps({**envelope, "data": [broken]}))
    odd = ApiAuditEvent.model_validate_json(
        json.dumps(
            {
                "id": "a",
                "type": "api_key.created",
                "effective_at": 1,
                "project": "proj_a",
                "actor": {"type": "session", "session": ["not", "an", "object"]},
                "api_key.created": {"id": "key_1", "data": {"scopes": "api.model.read"}},
            }
        )
    )
    assert odd.project is None
    assert odd.key_created is None, "scopes of the wrong shape are not read as unrestricted"


async def test_counted_events_are_logged_without_personal_data_unless_asked(
    simulation: Simulation,
    start_exporter: ExporterFactory,
    clocked: FakeTime,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    org = simulation.org
    project = org.add_project("payments", created_at=START - 90 * DAY)
    org.record_audit_event("login.failed", effective_at=START - 100)  # backfill: not logged
    client = await start_audit(start_exporter, audit_log_events=True)
    await scrape(client)
    assert logged_ids(caplog) == []
    session = org.record_audit_event(
        "api_key.created", effective_at=START + 1, project_id=project.id
    )
    service = org.record_audit_event(
        "user.added", effective_at=START + 2, actor="service_account_api_key"
    )
    clocked.advance(INTERVAL)
    await scrape(client)
    lines = {r.audit_event["id"]: r for r in caplog.records if r.name == AUDIT_LOGGER}  # type: ignore[attr-defined]
    assert set(lines) == {session.id, service.id}
    assert session.actor is not None
    assert service.actor is not None
    entry = json.loads(AuditEventFormatter().format(lines[session.id]))
    assert entry == {
        "time": entry["time"],
        "logger": "exporter.audit",
        "id": session.id,
        "type": "api_key.created",
        "effective_at": START + 1,
        "project_id": project.id,
        "project_name": "payments",
        "actor_type": "session",
        "actor_id": session.actor.user_id,
        "user_id": session.actor.user_id,
    }
    text = " ".join(json.dumps(r.audit_event) for r in lines.values())  # type: ignore[attr-defined]
    assert session.actor.user_email is not None
    assert session.actor.ip_address is not None
    assert session.actor.user_email not in text
    assert session.actor.ip_address not in text
    service_entry = lines[service.id].audit_event  # type: ignore[attr-defined]
    assert service_entry["actor_id"] == service.actor.api_key_id
    assert service_entry["service_account_id"] == service.actor.service_account_id
    caplog.clear()
    personal = await start_audit(
        start_exporter, audit_log_events=True, audit_log_personal_data=True
    )
    await scrape(personal)
    late = org.record_audit_event("login.failed", effective_at=int(clocked.wall()) + 1)
    clocked.advance(INTERVAL)
    await scrape(personal)
    [record] = [r for r in caplog.records if r.name == AUDIT_LOGGER]
    assert late.actor is not None
    assert record.audit_event["user_email"] == late.actor.user_email  # type: ignore[attr-defined]
    assert record.audit_event["ip_address"] == late.actor.ip_address  # type: ignore[attr-defined]


async def test_promtool_accepts_the_audit_exposition(
    simulation: Simulation, start_exporter: ExporterFactory, clocked: FakeTime
) -> None:
    org = simulation.org
    project = org.add_project("p", created_at=START - 90 * DAY).id
    org.audit_key_created(project, "key_a", ["api.model.request"], effective_at=START - 60)
    client = await start_audit(start_exporter)
    await scrape(client)
    org.record_audit_event("ip_allowlist.config.deactivated", effective_at=START + 1)
    clocked.advance(INTERVAL)
    text = await scrape_text(client)
    assert "# TYPE openai_audit_events_total counter" in text
    assert "openai_api_key_scopes_info{" in text
    assert_promtool_accepts(text)
