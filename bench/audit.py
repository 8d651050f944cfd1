"""The audit size's log, events and table (bench.main drives it): an audit log growing
by 1,000 events a minute, polled by the audit_logs collector alone in a worker process,
at a fixed instant moved a minute per poll.

Per run a new worker: its first poll (the backfill, cut by its page bound: the history
holds more than 100 pages), then steady polls, each after a minute of new events (a
fifth of them late, up to 5 minutes back). Each steady poll re-reads the overlap
(10 minutes below the newest event): that, not the minute's events, is most of its pages.
"""

from __future__ import annotations

import random
import statistics
from typing import Any

from bench.plan import Plan
from bench.sizes import AUDIT_AT, AuditSize
from exporter.simulator.audit import AuditActorKind
from exporter.simulator.organization import Organization

TYPES = ("login.succeeded", "api_key.created", "user.updated", "login.failed", "project.updated")
ACTORS: tuple[AuditActorKind, ...] = ("session", "user_api_key", "service_account_api_key")
LATE_FRACTION = 0.2
LATE_SECONDS = 300


def audit_organization(size: AuditSize, seed: int = 5) -> tuple[Organization, list[str]]:
    """A few projects and ``history_minutes`` of events before AUDIT_AT."""
    org = Organization(seed=seed, now=AUDIT_AT)
    projects = [org.add_project(f"audit {n}", created_at=AUDIT_AT - 86400).id for n in range(5)]
    rng = random.Random(seed)
    history = size.history_minutes * size.events_per_minute
    for n in range(history):  # ascending, as the log keeps them: appends
        at = AUDIT_AT - size.history_minutes * 60 + n * 60 // size.events_per_minute
        _record(org, rng, projects, at)
    return org, projects


def inject_minute(
    org: Organization,
    size: AuditSize,
    projects: list[str],
    now: int,
    rng: random.Random,
    since: int = 0,
) -> int:
    """A minute's events before ``now``; returns how many are dated ``since`` or later
    (what a collector counting from ``since`` must count)."""
    countable = 0
    for n in range(size.events_per_minute):
        at = now - 60 + n * 60 // size.events_per_minute
        if rng.random() < LATE_FRACTION:
            at -= rng.randrange(1, LATE_SECONDS)
        _record(org, rng, projects, at)
        countable += at >= since
    return countable


def _record(org: Organization, rng: random.Random, projects: list[str], at: int) -> None:
    org.record_audit_event(
        rng.choice(TYPES),
        effective_at=at,
        project_id=rng.choice(projects),
        actor=rng.choice(ACTORS),
    )


def audit_table(results: list[dict[str, Any]], plan: Plan) -> list[str]:
    lines = [
        f"Audit log polls (the audit_logs collector alone, in its own worker; "
        f"--audit.interval 1m, --audit.overlap 10m, backfill bound 100 pages): median of "
        f"{plan.audit_runs} first polls (a new worker each: the backfill, which counts "
        f"nothing) and of {plan.audit_runs * plan.audit_polls} steady polls (each after a "
        "minute of new events, a fifth of them late by up to 5 minutes). Requests: pages of "
        "100 events; a steady poll re-reads the overlap below the newest event. CPU: the "
        "exporter's process. RSS: the worker after its polls. Ids held: the state's ids "
        "(those within the overlap of the newest event). State MB: the audit state's Python "
        "objects (sys.getsizeof of each, once). Counted below injected in the first polls "
        "after a start: late events dated before the start are history, never counted.",
        "",
        "| size | events/min | poll | requests | s | CPU s | ids held | injected/poll "
        "| counted/poll | state MB | RSS MiB |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        runs = result["runs"]
        state_mb = statistics.median(r["memory_after"]["audit_bytes"] for r in runs) / 1e6
        rss = statistics.median(r["memory_after"]["VmRSS"] for r in runs) / 1024
        for kind, steady in (("first", False), ("steady", True)):
            polls = [p for r in runs for p in (r["polls"][1:] if steady else r["polls"][:1])]
            counted = [
                b["counted_events"] - a["counted_events"]
                for r in runs
                for a, b in zip(r["polls"], r["polls"][1:], strict=False)
            ]
            cells = [
                f"{statistics.median(p['requests'] for p in polls):.0f}",
                f"{statistics.median(p['seconds'] for p in polls):.2f}",
                f"{statistics.median(p['cpu_seconds'] for p in polls):.2f}",
                f"{statistics.median(p['ids_held'] for p in polls):,.0f}",
                f"{statistics.median(p['injected'] for p in polls):,.0f}",
                f"{statistics.median(counted):,.0f}" if steady else "0",
            ]
            lines.append(
                f"| {result['size']} | {result['events_per_minute']:,} | {kind} "
                f"| {' | '.join(cells)} | {state_mb:.1f} | {rss:.0f} |"
            )
    return lines
