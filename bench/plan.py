"""What a benchmark run measures, and how many times."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from bench.sizes import SIZES, Size

PARTS = ("refresh", "naive", "scrape", "process")


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

    def runs_for(self, size: Size, runs: int) -> int:
        # At the huge size the sequential listing alone takes minutes: once is enough.
        return 1 if size.keys > 50_000 else runs


def plan_from(args: argparse.Namespace) -> Plan:
    quick = args.quick
    names = args.sizes.split(",") if args.sizes else (["small", "large"] if quick else list(SIZES))
    parts = frozenset(args.parts.split(",")) if args.parts else frozenset(PARTS)
    unknown = sorted(parts - set(PARTS)) + [name for name in names if name not in SIZES]
    if unknown:
        raise SystemExit(f"unknown size or part: {', '.join(unknown)}")
    return Plan(
        sizes=tuple(SIZES[name] for name in names),
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
