"""``make loadtest``: many concurrent scrapers on /metrics of the real exporter, for a while.

    .venv/bin/python bench/loadtest.py                  # 200 clients, 60 s, 20,000 keys
    .venv/bin/python bench/loadtest.py --clients 50 --duration 10 --projects 100

The simulator (``openai-admin-api-simulator``) and the exporter (the real command
line, ``exporter.cli.main``) each run in a process of their own; this process only
generates load. The exporter gets one extra route, ``/bench/tasks``, added by this
script's ``--serve`` mode around ``create_app``, so its asyncio tasks and threads can
be counted from outside. Its resident memory and open file descriptors are read from
``/proc``. The cache TTL is short (15 s by default) so that refreshes happen under
load. Prints a table: requests, failures, latency percentiles, and the exporter's
footprint at the start (after a warm-up) and at the end (after the load stopped).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import aiohttp

if TYPE_CHECKING:
    from tests.process import RunningExporter

ADMIN_KEY = "sk-admin-loadtest-fake"
PROMETHEUS = {  # what Prometheus 2.x sends: OpenMetrics first, gzip always
    "Accept": "application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
    "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
    "Accept-Encoding": "gzip",
    "X-Prometheus-Scrape-Timeout-Seconds": "10",
}
PLAIN = {"Accept": "text/plain", "Accept-Encoding": "gzip"}
TASKS_PATH = "/bench/tasks"


ROOT = Path(__file__).resolve().parent.parent


# -- the exporter's process, with a task counter ----------------------------------------


def serve(argv: list[str]) -> int:
    """The real command line, with ``/bench/tasks`` added to its app."""
    from aiohttp import web

    from exporter import cli
    from exporter.web.app import create_app as real_create_app

    async def tasks(request: web.Request) -> web.Response:
        return web.json_response(
            {"tasks": len(asyncio.all_tasks()), "threads": threading.active_count()}
        )

    def create_app(*args: object, **kwargs: object) -> web.Application:
        app = real_create_app(*args, **kwargs)  # type: ignore[arg-type]
        app.router.add_get(TASKS_PATH, tasks)
        return app

    vars(cli)["create_app"] = create_app  # what cli.serve calls
    return cli.main(argv)


# -- the load ---------------------------------------------------------------------------


@dataclass
class Footprint:
    rss_kib: int
    fds: int
    tasks: int
    threads: int


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    failures: dict[str, int] = field(default_factory=dict)
    bytes: int = 0

    def fail(self, why: str) -> None:
        self.failures[why] = self.failures.get(why, 0) + 1


def _proc(pid: int) -> tuple[int, int]:
    status = Path(f"/proc/{pid}/status").read_text()
    rss = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
    return rss, sum(1 for _ in Path(f"/proc/{pid}/fd").iterdir())


async def footprint(url: str, pid: int) -> Footprint:
    """Measured over a connection of its own, opened and closed for the purpose."""
    async with aiohttp.ClientSession() as probe, probe.get(url + TASKS_PATH) as response:
        counts = await response.json()
    rss, fds = await asyncio.to_thread(_proc, pid)
    return Footprint(rss, fds, counts["tasks"] - 1, counts["threads"])  # less the probe's own


async def sample_peaks(url: str, pid: int, until: float, peaks: list[Footprint]) -> None:
    """The footprint every few seconds while the load runs (its connections included)."""
    while time.monotonic() < until - 1:
        await asyncio.sleep(min(5.0, max(0.5, until - time.monotonic() - 1)))
        peaks.append(await footprint(url, pid))


async def client(
    session: aiohttp.ClientSession, url: str, headers: dict[str, str], until: float, tally: Tally
) -> None:
    while time.monotonic() < until:
        started = time.perf_counter()
        try:
            async with session.get(url + "/metrics", headers=headers, auto_decompress=False) as r:
                body = await r.read()
                if r.status != 200:
                    tally.fail(f"HTTP {r.status}")
                    continue
        except (aiohttp.ClientError, TimeoutError) as error:
            tally.fail(type(error).__name__)
            continue
        tally.latencies.append(time.perf_counter() - started)
        tally.bytes += len(body)


@asynccontextmanager
async def processes(args: argparse.Namespace) -> AsyncIterator[RunningExporter]:
    from tests.process import run_exporter, venv_program  # importable once main() set the path

    simulator = await asyncio.create_subprocess_exec(
        *venv_program("openai-admin-api-simulator", "exporter.simulator"),
        "--listen=127.0.0.1:0",
        f"--projects={args.projects}",
        f"--keys-per-project={args.keys_per_project}",
        "--archived-fraction=0",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert simulator.stdout is not None
    base_url = (await simulator.stdout.readline()).decode().strip()
    try:
        async with run_exporter(
            f"--cache.ttl={args.ttl}",
            f"--cache.retry-interval={args.ttl}",
            "--log.level=warning",
            env={"OPENAI_ADMIN_KEY": ADMIN_KEY, "OPENAI_BASE_URL": base_url},
            command=[sys.executable, __file__, "--serve"],
            capture_output=False,  # its warnings show while the load runs
        ) as exporter:
            try:
                yield exporter
            finally:
                await exporter.stop()
    finally:
        if simulator.returncode is None:
            simulator.terminate()
            await simulator.wait()


async def run(args: argparse.Namespace) -> int:
    async with processes(args) as exporter:
        url, pid = exporter.url, exporter.process.pid
        await exporter.wait_until_ready(60)
        await load(url, 10, 3.0, Tally(), args.timeout)  # warm-up: first renders, first gzip
        await asyncio.sleep(1)
        start = await footprint(url, pid)
        tally = Tally()
        peaks: list[Footprint] = []
        began = time.monotonic()
        await asyncio.gather(
            load(url, args.clients, args.duration, tally, args.timeout),
            sample_peaks(url, pid, began + args.duration, peaks),
        )
        elapsed = time.monotonic() - began
        await asyncio.sleep(2)  # the load's connections are closed; let the server see it
        end = await footprint(url, pid)
    report(args, tally, elapsed, start, end, peaks)
    return 1 if tally.failures else 0


async def load(
    url: str, clients: int, duration: float, tally: Tally, request_timeout: float
) -> None:
    """`clients` scrapers, each on a keep-alive connection of its own, as Prometheus."""
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=request_timeout)
    ) as session:
        until = time.monotonic() + duration
        await asyncio.gather(
            *(
                client(session, url, PLAIN if n % 5 == 4 else PROMETHEUS, until, tally)
                for n in range(clients)
            )
        )


def report(
    args: argparse.Namespace,
    tally: Tally,
    elapsed: float,
    start: Footprint,
    end: Footprint,
    peaks: list[Footprint],
) -> None:
    latencies = sorted(tally.latencies)
    failures = sum(tally.failures.values())

    def pct(p: float) -> str:
        if not latencies:
            return "-"
        return f"{latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000:.1f} ms"

    keys = args.projects * args.keys_per_project
    print(
        f"\nopenai-key-exporter load test: {args.clients} clients for {args.duration:g} s, "
        f"{args.projects} projects x {args.keys_per_project} keys = {keys} keys, "
        f"cache TTL {args.ttl}"
    )
    print(
        f"machine: {os.cpu_count()} CPUs, {platform.machine()}, "
        f"Python {platform.python_version()}, {platform.platform()}"
    )
    print("\n| measure | value |\n|---|---|")
    print(f"| requests | {len(latencies) + failures} |")
    print(f"| failed | {failures} {json.dumps(tally.failures) if failures else ''}|")
    print(f"| requests/s | {len(latencies) / elapsed:.0f} |")
    print(f"| p50 latency | {pct(0.50)} |")
    print(f"| p99 latency | {pct(0.99)} |")
    print(f"| max latency | {pct(1.0)} |")
    mean = statistics.fmean(latencies) if latencies else 0.0
    print(f"| mean latency | {mean * 1000:.1f} ms |")
    print(f"| body bytes received | {tally.bytes / 1e6:.0f} MB |")
    print(
        "\n| exporter (idle, before and after) | start | end | change | peak under load |"
        "\n|---|---|---|---|---|"
    )
    for name, a, b, peak in (
        (
            "resident memory (MiB)",
            start.rss_kib / 1024,
            end.rss_kib / 1024,
            max((p.rss_kib for p in peaks), default=0) / 1024,
        ),
        ("open file descriptors", start.fds, end.fds, max((p.fds for p in peaks), default=0)),
        ("asyncio tasks", start.tasks, end.tasks, max((p.tasks for p in peaks), default=0)),
        ("threads", start.threads, end.threads, max((p.threads for p in peaks), default=0)),
    ):
        print(f"| {name} | {a:.0f} | {b:.0f} | {b - a:+.0f} | {peak:.0f} |")


def main() -> int:
    # Run as a script: the repository root, for tests.process (and --serve's exporter).
    sys.path.insert(0, str(ROOT))
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        return serve(sys.argv[2:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    parser.add_argument("--projects", type=int, default=1000)
    parser.add_argument("--keys-per-project", type=int, default=20)
    parser.add_argument("--ttl", default="15s", help="the exporter's --cache.ttl")
    parser.add_argument("--timeout", type=float, default=30.0, help="per request, seconds")
    return asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
