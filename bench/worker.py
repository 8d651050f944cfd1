"""The exporter's side of a benchmark run, in its own process (the simulator has another).

Driven over stdin/stdout, one JSON line each way, so the driver can read the
simulator's request count between steps:

- ``{"do": "refresh"}``: one refresh through the exporter's own wiring
  (``exporter.pipeline.open_pipeline`` over ``upstream.shared``: its session,
  connector, client, runners and caches), with the collectors the worker was started with.
- ``{"do": "naive"}``: the same organization listed the way a cron script with the
  official SDK does: one request at a time, at the API's default page size.
- ``{"do": "calibrate"}``: the latency the simulator really gives at the benchmark's
  concurrency (its injected latency plus its own work), with a bare client.
- ``{"do": "scrape", ...}``: scrape cost on the snapshot of the last refresh.
- ``{"do": "clock", "at": T}``: from now on the exporter's wall clock reads T (the usage
  size polls at a fixed instant, the simulator's clock set to the same).
- ``{"do": "memory"}``: the process's RSS, and the Python objects the usage and audit
  states hold.
- ``{"do": "quit"}``.

Each refresh also reports the CPU spent parsing responses (pydantic, JSON to models) and
advancing bucket ledgers, by wrapping those two functions in this process only.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
from pydantic import SecretStr

from bench import scrape_cost
from bench.sizes import SDK_DEFAULT_LIMIT
from exporter.clock import Clocks
from exporter.collectors import ledger as ledger_module
from exporter.collectors.audit_state import AuditState
from exporter.collectors.usage import REQUESTS, SOURCES, Usage
from exporter.config import Settings
from exporter.health import ExporterHealth
from exporter.pipeline import enabled_collectors, open_pipeline, organization_bound
from exporter.snapshot import Snapshot
from exporter.upstream import client as client_module
from exporter.upstream.shared import open_shared_upstream

ADMIN_KEY = "sk-admin-benchmark"
DEFAULT_REQUEST_TIMEOUT: float = Settings.model_fields["openai_request_timeout"].default
# CPU seconds in each since the worker started, and the bytes of the bodies parsed.
CPU = {"parse": 0.0, "ledger": 0.0, "bytes": 0.0}


def _timed_cpu(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.process_time()
        try:
            return function(*args, **kwargs)
        finally:
            CPU[name] += time.process_time() - started
            if name == "parse":
                CPU["bytes"] += len(args[0])  # _parse(body, model, endpoint)

    return timed


def instrument() -> None:
    """Count the CPU of response parsing (the client's one ``_parse``: the body to
    pydantic models) and of ``BucketLedger.advance``: a few calls per poll, so the
    wrappers cost nothing measurable."""
    parse = "_parse"
    setattr(client_module, parse, _timed_cpu("parse", getattr(client_module, parse)))
    ledger = ledger_module.BucketLedger
    ledger.advance = _timed_cpu("ledger", ledger.advance)  # type: ignore[method-assign]


class Wall:
    """The exporter's wall clock: the real one until the driver fixes an instant."""

    def __init__(self) -> None:
        self.at: float | None = None

    def __call__(self) -> float:
        return time.time() if self.at is None else self.at


def deep_size(root: object) -> tuple[int, int]:
    """Bytes (``sys.getsizeof``) and count of the distinct objects reachable from
    ``root``, classes and modules left out: what a state holds in Python objects."""
    seen: set[int] = set()
    stack = [root]
    size = count = 0
    while stack:
        item = stack.pop()
        if id(item) in seen or isinstance(item, type):
            continue
        seen.add(id(item))
        size += sys.getsizeof(item)
        count += 1
        stack.extend(gc.get_referents(item))
    return size, count


def rss_kib() -> dict[str, int]:
    status = Path("/proc/self/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return {name: int(fields[name].split()[0]) for name in ("VmRSS", "VmHWM")}


def usage_figures(snapshot: Snapshot) -> dict[str, Any]:
    """Series per source and the requests counted, from the usage state (if any)."""
    if "usage" not in snapshot:
        return {}
    usage: Usage = snapshot["usage"].rows
    counted = 0
    for source in SOURCES:
        ledger = usage.ledgers.get(source.name)
        if ledger is not None:
            index = source.measures.index(REQUESTS)
            counted += sum(totals[index] for _, totals in ledger.totals())
    return {
        "series": len(usage),
        "series_by_source": {name: len(ledger) for name, ledger in usage.ledgers.items()},
        "counted_requests": counted,
    }


def audit_figures(snapshot: Snapshot) -> dict[str, Any]:
    """The audit state's ids held and events counted (if any)."""
    if "audit_logs" not in snapshot:
        return {}
    audit: AuditState = snapshot["audit_logs"].rows
    return {"ids_held": len(audit.seen), "counted_events": audit.counted}


async def naive_listing(base_url: str, limit: int = SDK_DEFAULT_LIMIT) -> dict[str, Any]:
    """Every key, sequentially: list all projects, then each project's keys in turn."""
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    requests = keys = 0
    started = time.perf_counter()
    async with aiohttp.ClientSession(headers=headers) as session:

        async def pages(path: str, params: dict[str, str]) -> list[dict[str, Any]]:
            nonlocal requests
            items: list[dict[str, Any]] = []
            after: str | None = None
            while True:
                query = {**params, "limit": str(limit), **({"after": after} if after else {})}
                async with session.get(base_url + path, params=query) as response:
                    response.raise_for_status()
                    page = await response.json()
                requests += 1
                items.extend(page["data"])
                if not page["has_more"]:
                    return items
                after = page["last_id"]

        for project in await pages("/organization/projects", {}):
            path = f"/organization/projects/{project['id']}/api_keys"
            keys += len(await pages(path, {"owner_project_access": "any"}))
    return {"seconds": time.perf_counter() - started, "requests": requests, "keys": keys}


async def calibrate(base_url: str, concurrency: int, requests: int) -> dict[str, Any]:
    """Mean seconds per key listing with ``concurrency`` in flight, nothing else running."""
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    params = {"limit": "100", "owner_project_access": "any"}
    latencies: list[float] = []
    async with aiohttp.ClientSession(headers=headers) as session:
        async with session.get(base_url + "/organization/projects?limit=100") as response:
            projects = [project["id"] for project in (await response.json())["data"]]
        queue = [projects[n % len(projects)] for n in range(requests)]

        async def client() -> None:
            while queue:
                path = f"/organization/projects/{queue.pop()}/api_keys"
                started = time.perf_counter()
                async with session.get(base_url + path, params=params) as response:
                    await response.read()
                latencies.append(time.perf_counter() - started)

        await asyncio.gather(*(client() for _ in range(concurrency)))
    return {"latency": sum(latencies) / len(latencies), "requests": len(latencies)}


async def serve(
    base_url: str,
    concurrency: int,
    collector_names: tuple[str, ...],
    request_timeout: float | None = None,
) -> None:
    instrument()
    wall = Wall()
    settings = Settings(
        admin_key=SecretStr(ADMIN_KEY),
        base_url=base_url,
        openai_concurrency=concurrency,
        openai_request_timeout=request_timeout or DEFAULT_REQUEST_TIMEOUT,
        openai_refresh_timeout=3600,
        cache_ttl=3600,
        cache_retry_interval=3600,
        enabled_collectors=collector_names,
    )
    collectors = enabled_collectors(settings)
    health = ExporterHealth(
        [c.name for c in collectors], [e for c in collectors for e in c.endpoints]
    )
    loop = asyncio.get_running_loop()
    async with (
        open_shared_upstream(organization_bound(collectors)) as upstream,
        open_pipeline(
            settings,
            collectors,
            upstream=upstream,
            observe_request=health.observe_request,
            observe_report=health.record,
            clocks=Clocks(wall=wall),
        ) as (cache, _),
    ):
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line:
                return
            command = json.loads(line)
            answer: dict[str, Any]
            if command["do"] == "refresh":
                parse, ledger, read = CPU["parse"], CPU["ledger"], CPU["bytes"]
                started, cpu = time.perf_counter(), time.process_time()
                await asyncio.gather(*cache.start_refresh())
                seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
                results = {report.result for report in health.last_reports.values()}
                snapshot = cache.current()
                keys = snapshot["api_keys"].rows.key_count if "api_keys" in snapshot else 0
                answer = {
                    "seconds": seconds,
                    "cpu_seconds": cpu,
                    "parse_cpu_seconds": CPU["parse"] - parse,
                    "ledger_cpu_seconds": CPU["ledger"] - ledger,
                    "bytes_read": int(CPU["bytes"] - read),
                    "result": results.pop() if len(results) == 1 else "mixed",
                    "keys": keys,
                    **usage_figures(snapshot),
                    **audit_figures(snapshot),
                }
            elif command["do"] == "clock":
                wall.at = command["at"]
                answer = {"at": wall()}
            elif command["do"] == "memory":
                gc.collect()
                snapshot = cache.current()
                started = time.perf_counter()
                size, objects = deep_size(snapshot["usage"].rows) if "usage" in snapshot else (0, 0)
                audit = snapshot["audit_logs"].rows if "audit_logs" in snapshot else None
                audit_size, _ = deep_size(audit) if audit is not None else (0, 0)
                answer = {
                    **rss_kib(),
                    "usage_bytes": size,
                    "usage_objects": objects,
                    "audit_bytes": audit_size,
                    "seconds": time.perf_counter() - started,
                }
            elif command["do"] == "calibrate":
                answer = await calibrate(base_url, concurrency, command["requests"])
            elif command["do"] == "naive":
                answer = await naive_listing(base_url)
            elif command["do"] == "scrape":
                inventory = cache.current()
                assert inventory, "scrape needs a refresh first"
                answer = scrape_cost.measure(
                    collectors,
                    inventory,
                    health,
                    runs=command["runs"],
                    baseline_runs=command["baseline_runs"],
                    check=command["check"],
                )
            else:
                return
            print(json.dumps(answer), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--concurrency", type=int, required=True)
    parser.add_argument("--collectors", default="api_keys", help="comma-separated names")
    parser.add_argument("--request-timeout", type=float, help="seconds (default: the exporter's)")
    args = parser.parse_args()
    collectors = tuple(args.collectors.split(","))
    asyncio.run(serve(args.base_url, args.concurrency, collectors, args.request_timeout))


if __name__ == "__main__":
    main()
