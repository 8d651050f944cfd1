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
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.exporter_process import PROMETHEUS_HEADERS, next_second, running_exporter, storm
from bench.plan import PARTS, Plan, plan_from
from bench.report import tables
from bench.sizes import SIZES, Size
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


async def _start_worker(base_url: str, plan: Plan, collectors: Sequence[str]) -> Worker:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.worker",
        f"--base-url={base_url}",
        f"--concurrency={plan.concurrency}",
        f"--collectors={','.join(collectors)}",
        cwd=ROOT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    return Worker(process)


# Every collector that is on by default: the refresh a default exporter makes.
DEFAULT_COLLECTORS = tuple(name for name, on in COLLECTOR_DEFAULTS.items() if on)


async def _measure_worker(
    size: Size, plan: Plan, state: SimulatorState, base_url: str
) -> dict[str, Any]:
    worker = await _start_worker(base_url, plan, ["api_keys"])
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
            # Right after, side by side: the same refresh with every default collector on.
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
                f"{calibration['latency'] * 1000:.1f} ms; every default collector "
                f"{all_on['seconds']:.2f}s, {answer['all_collectors_requests']} requests"
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
        for each in (worker, every):
            if each.process.stdin is not None:
                each.process.stdin.close()
            await each.process.wait()
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
    parser.add_argument("--sizes", help=f"comma-separated, of {', '.join(SIZES)}")
    parser.add_argument("--runs", type=int, help="refreshes per size")
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per request")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--parts", help=f"comma-separated, of {', '.join(PARTS)} (default all)")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    args = parser.parse_args(argv)
    plan = plan_from(args)
    started = time.time()
    print(
        f"openai-key-exporter benchmark, {time.strftime('%Y-%m-%d %H:%M')}, "
        f"Python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs",
        flush=True,
    )
    idle = asyncio.run(measure_size(IDLE, plan)) if "process" in plan.parts else {}
    results = [asyncio.run(measure_size(size, plan)) for size in plan.sizes]
    print(tables(results, idle, plan))
    print(f"\n({time.time() - started:.0f} s)")
    if args.json:
        args.json.write_text(json.dumps({"idle": idle, "results": results}, indent=1))
    return 0
