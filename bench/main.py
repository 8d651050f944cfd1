"""Drives the benchmark: per size, a simulator here and the exporter in child processes.

The simulator serves from this process, the exporter's side runs in another
(``bench.worker``, then the real command), so neither's CPU time shows up in the
other's numbers. Every ratio compares two things measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.audit import audit_organization, inject_minute
from bench.exporter_process import PROMETHEUS_HEADERS, next_second, running_exporter, storm
from bench.organizations import measure_organizations, organizations_table
from bench.plan import PARTS, Plan, plan_from
from bench.report import tables
from bench.sizes import (
    AUDIT_AT,
    AUDIT_POLL_INTERVAL,
    AUDIT_SIZES,
    POLL_INTERVAL,
    SIZES,
    USAGE_AT,
    USAGE_SIZES,
    AuditSize,
    Size,
    UsageSize,
)
from exporter.collectors.catalog import COLLECTOR_DEFAULTS
from exporter.simulator.app import SimulatorState, serve_simulator
from exporter.simulator.faults import FaultInjector
from exporter.simulator.organization import build_organization

ROOT = Path(__file__).resolve().parent.parent
IDLE = Size("idle", 0, 0)


class Worker:
    """The exporter side of one size, in a child process."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    async def ask(self, command: dict[str, Any]) -> dict[str, Any]:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write(json.dumps(command).encode() + b"\n")
        await self.process.stdin.drain()
        line = await self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the benchmark worker died during {command['do']}")
        answer: dict[str, Any] = json.loads(line)
        return answer


async def measure_size(size: Size, plan: Plan) -> dict[str, Any]:
    state = SimulatorState(
        org=build_organization(size.spec()), faults=FaultInjector(latency=plan.latency)
    )
    result: dict[str, Any] = {"size": size.name, "keys": size.keys, "projects": size.projects}
    async with serve_simulator(state) as base_url:
        if size.keys and plan.parts & {"refresh", "naive", "scrape"}:
            result.update(await _measure_worker(size, plan, state, base_url))
        if "process" in plan.parts:
            result.update(await _measure_process(size, plan, state, base_url))
    return result


async def _start_worker(
    base_url: str, plan: Plan, collectors: Sequence[str], *options: str
) -> Worker:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.worker",
        f"--base-url={base_url}",
        f"--concurrency={plan.concurrency}",
        f"--collectors={','.join(collectors)}",
        *options,
        cwd=ROOT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    return Worker(process)


# Every collector that is on by default: the refresh a default exporter makes.
DEFAULT_COLLECTORS = tuple(name for name, on in COLLECTOR_DEFAULTS.items() if on)
# The default set of issue 9: the credential inventories, one listing each beside the keys.
# Issue 10's usage, costs and spend limits are on by default too, but poll other things at
# other intervals (spend limits: two requests per project); they are measured apart.
CREDENTIAL_COLLECTORS = ("api_keys", "admin_api_keys", "users", "invites", "certificates")


async def _measure_worker(
    size: Size, plan: Plan, state: SimulatorState, base_url: str
) -> dict[str, Any]:
    worker = await _start_worker(base_url, plan, ["api_keys"])
    credentials = await _start_worker(base_url, plan, CREDENTIAL_COLLECTORS)
    every = await _start_worker(base_url, plan, DEFAULT_COLLECTORS)
    result: dict[str, Any] = {}
    try:
        refreshes = []
        for _ in range(plan.refresh_runs if "refresh" in plan.parts else 1):
            # Right before each refresh, the latency the simulator gives just then: on a
            # shared machine it moves with the neighbours' load, and so does the refresh.
            calibration = await worker.ask({"do": "calibrate", "requests": 10 * plan.concurrency})
            before, cpu = len(state.requests), time.process_time()
            answer = await worker.ask({"do": "refresh"})
            answer["requests"] = len(state.requests) - before
            answer["simulator_cpu_seconds"] = time.process_time() - cpu
            answer["simulator_latency"] = calibration["latency"]
            # Right after, side by side: the same refresh with the credential collectors,
            # then with every default collector on.
            before = len(state.requests)
            with_credentials = await credentials.ask({"do": "refresh"})
            answer["credentials_seconds"] = with_credentials["seconds"]
            answer["credentials_requests"] = len(state.requests) - before
            answer["credentials_result"] = with_credentials["result"]
            before = len(state.requests)
            all_on = await every.ask({"do": "refresh"})
            answer["all_collectors_seconds"] = all_on["seconds"]
            answer["all_collectors_requests"] = len(state.requests) - before
            answer["all_collectors_result"] = all_on["result"]
            refreshes.append(answer)
            _progress(
                f"{size.name}: refresh {answer['seconds']:.2f}s, {answer['requests']} requests, "
                f"CPU {answer['cpu_seconds']:.2f}s, simulator CPU "
                f"{answer['simulator_cpu_seconds']:.2f}s, simulator latency "
                f"{calibration['latency'] * 1000:.1f} ms; credential collectors "
                f"{with_credentials['seconds']:.2f}s, {answer['credentials_requests']} requests; "
                f"every default collector {all_on['seconds']:.2f}s, "
                f"{answer['all_collectors_requests']} requests"
            )
        if "refresh" in plan.parts:
            result["refreshes"] = refreshes
        if "naive" in plan.parts:
            result["naive"] = []
            for _ in range(plan.runs_for(size, plan.naive_runs)):
                before = len(state.requests)
                answer = await worker.ask({"do": "naive"})
                answer["requests_seen"] = len(state.requests) - before
                result["naive"].append(answer)
                _progress(f"{size.name}: naive {answer['seconds']:.1f}s")
        if "scrape" in plan.parts:
            result["scrape"] = await worker.ask(
                {
                    "do": "scrape",
                    "runs": plan.scrape_runs,
                    "baseline_runs": plan.runs_for(size, plan.baseline_runs),
                    "check": True,
                }
            )
            _progress(f"{size.name}: scrape cost measured")
    finally:
        for each in (worker, credentials, every):
            await _stop(each)
    return result


async def _stop(worker: Worker) -> None:
    if worker.process.stdin is not None:
        worker.process.stdin.close()
    await worker.process.wait()


async def measure_audit(size: AuditSize, plan: Plan) -> dict[str, Any]:
    """Audit polls: per run a new worker with the audit_logs collector alone, its first
    poll (the backfill) and steady polls a minute apart, each after a minute of events."""
    started = time.perf_counter()
    org, projects = audit_organization(size)
    result: dict[str, Any] = {
        "size": size.name,
        "events_per_minute": size.events_per_minute,
        "history_events": len(org.audit_events()),
        "build_seconds": time.perf_counter() - started,
        "runs": [],
    }
    rng = random.Random(7)
    state = SimulatorState(org=org, faults=FaultInjector(latency=plan.latency))
    now = AUDIT_AT
    async with serve_simulator(state) as base_url:
        for _ in range(plan.audit_runs):
            worker = await _start_worker(base_url, plan, ["audit_logs"])
            try:
                run: dict[str, Any] = {"memory_before": await worker.ask({"do": "memory"})}
                polls = []
                counting_start = now
                for n in range(1 + plan.audit_polls):
                    injected = countable = 0
                    if n:
                        now += AUDIT_POLL_INTERVAL
                        injected = size.events_per_minute
                        countable = inject_minute(org, size, projects, now, rng, counting_start)
                    await worker.ask({"do": "clock", "at": now})
                    before = len(state.requests)
                    answer = await worker.ask({"do": "refresh"})
                    answer.update(
                        requests=len(state.requests) - before,
                        at=now,
                        injected=injected,
                        countable=countable,
                    )
                    polls.append(answer)
                    _progress(
                        f"{size.name}: {'steady' if n else 'first'} poll {answer['seconds']:.2f}s, "
                        f"{answer['requests']} requests, CPU {answer['cpu_seconds']:.2f}s, "
                        f"{answer.get('ids_held', 0)} ids held, {answer['result']}"
                    )
                run["polls"] = polls
                run["memory_after"] = await worker.ask({"do": "memory"})
                result["runs"].append(run)
            finally:
                await _stop(worker)
            now += 3600  # the next run's worker starts on a log an hour further on
            for minute in range(1, 61):
                inject_minute(org, size, projects, now - 3600 + 60 * minute, rng)
    return result


USAGE_REQUEST_TIMEOUT = "--request-timeout=600"


class FixedClock:
    """The simulator's clock for the usage size: the instant the driver sets."""

    def __init__(self, at: float) -> None:
        self.at = at

    def __call__(self) -> float:
        return self.at


async def measure_usage(size: UsageSize, plan: Plan) -> dict[str, Any]:
    """Usage polls at a fixed instant: per run a new worker with the usage collector alone
    (so its first poll starts from an empty ledger), then steady polls that re-read the
    same window as it grows, every POLL_INTERVAL; its memory; the scrape of its counters."""
    started = time.perf_counter()
    org = build_organization(size.spec())
    clock = FixedClock(USAGE_AT)
    state = SimulatorState(org=org, faults=FaultInjector(latency=plan.latency), clock=clock)
    result: dict[str, Any] = {
        "size": size.name,
        "keys": size.keys,
        "active_keys": size.active_keys,
        "models": size.models,
        "nominal_series": size.nominal_series,
        "simulated_series": org.usage.series_count(),
        "build_seconds": time.perf_counter() - started,
        "runs": [],
    }
    _progress(f"{size.name}: organization built in {result['build_seconds']:.1f}s")
    async with serve_simulator(state) as base_url:
        for run in range(plan.usage_runs):
            # The simulator answers the six pages (20-30 MB each) from one process, one
            # after another, while it writes the earlier ones out: on this shared machine
            # the last body can end after the exporter's 30 s request timeout, and a retry
            # would measure the simulator's queue. The real API answers in parallel.
            worker = await _start_worker(base_url, plan, ["usage"], USAGE_REQUEST_TIMEOUT)
            try:
                measured: dict[str, Any] = {"memory_before": await worker.ask({"do": "memory"})}
                polls = []
                for n in range(1 + plan.steady_polls):
                    clock.at = USAGE_AT + n * POLL_INTERVAL
                    await worker.ask({"do": "clock", "at": clock.at})
                    before, cpu = len(state.requests), time.process_time()
                    answer = await worker.ask({"do": "refresh"})
                    answer["requests"] = len(state.requests) - before
                    answer["simulator_cpu_seconds"] = time.process_time() - cpu
                    answer["at"] = clock.at
                    polls.append(answer)
                    kind = "first" if n == 0 else "steady"
                    _progress(
                        f"{size.name}: {kind} poll {answer['seconds']:.2f}s, "
                        f"{answer['requests']} requests, {answer.get('series', 0)} series, CPU "
                        f"{answer['cpu_seconds']:.2f}s (parse {answer['parse_cpu_seconds']:.2f}s, "
                        f"ledger {answer['ledger_cpu_seconds']:.2f}s), simulator CPU "
                        f"{answer['simulator_cpu_seconds']:.2f}s"
                    )
                    # The requirement, checked on every poll of every run.
                    if answer["result"] != "success" or answer["requests"] != size.minimum_requests:
                        seen = [
                            (r.endpoint, r.status, sorted(set(r.query) - {"group_by"}))
                            for r in state.requests[before:]
                        ]
                        raise RuntimeError(
                            f"usage poll: {answer['result']}, {answer['requests']} requests "
                            f"(the minimum is {size.minimum_requests}): {seen}"
                        )
                measured["polls"] = polls
                measured["memory_after"] = await worker.ask({"do": "memory"})
                _progress(f"{size.name}: memory {measured['memory_after']}")
                if "scrape" in plan.parts and run == plan.usage_runs - 1:
                    result["scrape"] = await worker.ask(
                        {
                            "do": "scrape",
                            # Each render of ours takes ms once prepared; the baseline,
                            # 15-20 s, once.
                            "runs": min(plan.scrape_runs, 10),
                            "baseline_runs": 1,
                            "check": plan.usage_check,
                        }
                    )
                    _progress(f"{size.name}: scrape cost measured")
                result["runs"].append(measured)
            finally:
                await _stop(worker)
    return result


async def _measure_process(
    size: Size, plan: Plan, state: SimulatorState, base_url: str
) -> dict[str, Any]:
    ready_within = 60 + 4 * size.refresh_lower_bound(plan.concurrency, plan.latency)
    result: dict[str, Any] = {}
    async with running_exporter(base_url, concurrency=plan.concurrency, ttl="1h") as exporter:
        await exporter.wait_ready(ready_within)
        # The first scrape of a snapshot prepares its text: timed apart from the warm ones.
        first, _ = await exporter.scrape(PROMETHEUS_HEADERS)
        http = []
        for _ in range(plan.http_scrapes):
            await next_second()
            seconds, _ = await exporter.scrape(PROMETHEUS_HEADERS)
            http.append(seconds)
        result["memory_kib"] = exporter.memory_kib()
        plain = []
        for _ in range(plan.plain_scrapes):
            await next_second()
            seconds, _ = await exporter.scrape({"Accept-Encoding": "identity"})
            plain.append(seconds)
        result["memory_plain_kib"] = exporter.memory_kib()
        result["http"] = {"first": first, "om_gzip": http, "text": plain}
        _progress(f"{size.name}: memory {result['memory_kib']}, {result['memory_plain_kib']}")
    if size.keys:
        async with running_exporter(base_url, concurrency=plan.concurrency, ttl="2s") as exporter:
            await exporter.wait_ready(ready_within)
            result["storm"] = await storm(
                exporter,
                scrapes=plan.storm_scrapes,
                count=lambda: len(state.requests),
                ttl=2.0,
            )
            _progress(f"{size.name}: storm {result['storm']}")
    return result


def _progress(message: str) -> None:
    print(f"  {time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small and large, fewer runs")
    parser.add_argument(
        "--sizes", help=f"comma-separated, of {', '.join([*SIZES, *USAGE_SIZES, *AUDIT_SIZES])}"
    )
    parser.add_argument("--runs", type=int, help="refreshes per size")
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per request")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--parts", help=f"comma-separated, of {', '.join(PARTS)} (default all)")
    parser.add_argument(
        "--usage",
        action="store_true",
        help="with --quick: the usage size too (the full run has it)",
    )
    parser.add_argument("--usage-runs", type=int, help="usage size: runs, a first poll each")
    parser.add_argument(
        "--audit",
        action="store_true",
        help="with --quick: the audit size too (the full run has it)",
    )
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    args = parser.parse_args(argv)
    plan = plan_from(args)
    started = time.time()
    print(
        f"openai-key-exporter benchmark, {time.strftime('%Y-%m-%d %H:%M')}, "
        f"Python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs",
        flush=True,
    )
    measure_idle = plan.sizes and "process" in plan.parts
    idle = asyncio.run(measure_size(IDLE, plan)) if measure_idle else {}
    results = [asyncio.run(measure_size(size, plan)) for size in plan.sizes]
    usage = [asyncio.run(measure_usage(size, plan)) for size in plan.usage_sizes]
    audit = [asyncio.run(measure_audit(size, plan)) for size in plan.audit_sizes]
    several = asyncio.run(measure_organizations(plan)) if "organizations" in plan.parts else None
    print(tables(results, idle, plan, usage, audit))
    if several is not None:
        print("\n" + organizations_table(several))
    print(f"\n({time.time() - started:.0f} s)")
    if args.json:
        raw = {
            "idle": idle,
            "results": results,
            "usage": usage,
            "audit": audit,
            "organizations": several,
        }
        args.json.write_text(json.dumps(raw, indent=1))
    return 0
