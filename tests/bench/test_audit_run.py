"""A small run of the benchmark's audit size (bench/), asserting only exact facts, never a time.

The same driver as ``make bench``'s audit size: the simulator here with a growing audit
log, the audit_logs collector alone in a worker process, its backfill, then steady polls a
minute apart.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

import pytest

from bench.audit import audit_organization, audit_table
from bench.main import measure_audit
from bench.plan import PARTS, Plan
from bench.sizes import AUDIT_AT, AUDIT_POLL_INTERVAL, AUDIT_SIZES, AuditSize

pytestmark = pytest.mark.slow  # a child process and a few real seconds

# 30 minutes of history at 150 a minute: 4,500 events, more than 3 pages of backfill.
SMALL = AuditSize("audit-small", events_per_minute=150, history_minutes=30)
BOUND = 100  # --audit.backfill-max-pages' default
OVERLAP = 600
POLLS = 3


@pytest.fixture(scope="module")
def audit_run() -> dict[str, Any]:
    plan = Plan(
        sizes=(),
        parts=frozenset(PARTS),
        latency=0.0,
        concurrency=16,
        refresh_runs=1,
        naive_runs=1,
        scrape_runs=1,
        baseline_runs=1,
        http_scrapes=1,
        plain_scrapes=1,
        storm_scrapes=1,
        audit_sizes=(SMALL,),
        audit_runs=1,
        audit_polls=POLLS,
    )
    return asyncio.run(measure_audit(SMALL, plan))


def polls(audit_run: dict[str, Any]) -> list[dict[str, Any]]:
    (run,) = audit_run["runs"]
    found: list[dict[str, Any]] = run["polls"]
    return found


def test_the_audit_size_is_what_the_issue_says() -> None:
    assert AUDIT_SIZES["audit"].events_per_minute == 1_000


def test_the_backfill_reads_the_whole_history_when_it_fits_and_counts_nothing(
    audit_run: dict[str, Any],
) -> None:
    first = polls(audit_run)[0]
    history = SMALL.events_per_minute * SMALL.history_minutes
    assert audit_run["history_events"] == history
    assert first["requests"] == math.ceil(history / 100) < BOUND
    assert first["counted_events"] == 0
    assert first["result"] == "success"


def test_steady_polls_re_read_the_overlap_and_count_each_new_event_once(
    audit_run: dict[str, Any],
) -> None:
    org, _ = audit_organization(SMALL)  # the same history; the polls' events rebuilt below
    steady = polls(audit_run)[1:]
    assert [p["at"] for p in steady] == [
        AUDIT_AT + n * AUDIT_POLL_INTERVAL for n in range(1, POLLS + 1)
    ]
    before = polls(audit_run)[0]["counted_events"]
    for poll in steady:
        assert poll["result"] == "success"
        assert poll["injected"] == SMALL.events_per_minute
        # Each event of the minute dated at or after the start, once; late ones dated
        # before it are history.
        assert poll["counted_events"] - before == poll["countable"] > 0
        before = poll["counted_events"]
    assert steady[-1]["ids_held"] <= SMALL.events_per_minute * (OVERLAP // 60 + 1)
    # Pages of 100: the new minute and the overlap below the newest event at least.
    assert all(p["requests"] >= math.ceil(p["ids_held"] / 100) for p in steady)
    assert len(org.audit_events()) == audit_run["history_events"]


def test_the_table_has_a_first_and_a_steady_row(audit_run: dict[str, Any]) -> None:
    plan = Plan(
        sizes=(),
        parts=frozenset(PARTS),
        latency=0.0,
        concurrency=16,
        refresh_runs=1,
        naive_runs=1,
        scrape_runs=1,
        baseline_runs=1,
        http_scrapes=1,
        plain_scrapes=1,
        storm_scrapes=1,
        audit_runs=1,
        audit_polls=POLLS,
    )
    rows = [line for line in audit_table([audit_run], plan) if line.startswith("| audit-small")]
    assert [row.split(" | ")[2] for row in rows] == ["first", "steady"]


def test_memory_is_measured_for_the_audit_state(audit_run: dict[str, Any]) -> None:
    (run,) = audit_run["runs"]
    assert run["memory_before"]["audit_bytes"] == 0  # no poll yet
    assert run["memory_after"]["audit_bytes"] > 0
    assert run["memory_after"]["VmRSS"] > 0
