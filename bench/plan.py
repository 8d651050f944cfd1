"""What a benchmark run measures, and how many times."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from bench.sizes import AUDIT_SIZES, SIZES, USAGE_SIZES, AuditSize, Size, UsageSize

PARTS = ("refresh", "naive", "scrape", "process", "organizations")


@dataclass(frozen=True)
class Plan:
    sizes: tuple[Size, ...]
    parts: frozenset[str]
    latency: float
    concurrency: int
    refresh_runs: int
    naive_runs: int
    scrape_runs: int
    baseline_runs: int
    http_scrapes: int
    plain_scrapes: int
    storm_scrapes: int
    usage_sizes: tuple[UsageSize, ...] = ()
    usage_runs: int = 1  # a new worker each: its first poll, then the steady ones
    steady_polls: int = 2  # per run, each POLL_INTERVAL after the one before
    # Parsing both outputs of the usage size with prometheus_client's parsers takes minutes.
    usage_check: bool = True
    audit_sizes: tuple[AuditSize, ...] = ()
    audit_runs: int = 1  # a new worker each: its backfill, then the steady polls
    audit_polls: int = 5  # steady polls per run, each a minute after the one before

    def runs_for(self, size: Size, runs: int) -> int:
        # At the huge size the sequential listing alone takes minutes: once is enough.
        return 1 if size.keys > 50_000 else runs


def plan_from(args: argparse.Namespace) -> Plan:
    quick = args.quick
    if args.sizes:
        names = args.sizes.split(",")
    else:
        # The usage and audit sizes are part of the full run; --quick adds them with
        # --usage / --audit only.
        names = ["small", "large"] if quick else [*SIZES, *USAGE_SIZES, *AUDIT_SIZES]
        if args.usage and quick:
            names += list(USAGE_SIZES)
        if args.audit and quick:
            names += list(AUDIT_SIZES)
    parts = frozenset(args.parts.split(",")) if args.parts else frozenset(PARTS)
    known = {*SIZES, *USAGE_SIZES, *AUDIT_SIZES}
    unknown = sorted(parts - set(PARTS)) + [name for name in names if name not in known]
    if unknown:
        raise SystemExit(f"unknown size or part: {', '.join(unknown)}")
    return Plan(
        sizes=tuple(SIZES[name] for name in names if name in SIZES),
        usage_sizes=tuple(USAGE_SIZES[name] for name in names if name in USAGE_SIZES),
        usage_runs=args.usage_runs or (2 if quick else 3),
        usage_check=not quick,
        audit_sizes=tuple(AUDIT_SIZES[name] for name in names if name in AUDIT_SIZES),
        audit_runs=1 if quick else 3,
        audit_polls=3 if quick else 5,
        parts=parts,
        latency=args.latency,
        concurrency=args.concurrency,
        refresh_runs=args.runs or (2 if quick else 5),
        naive_runs=1 if quick else 3,
        scrape_runs=10 if quick else 40,
        baseline_runs=1 if quick else 3,
        http_scrapes=5 if quick else 15,
        plain_scrapes=3,
        storm_scrapes=100,
    )
