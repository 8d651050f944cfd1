"""The exporter's side of a benchmark run, in its own process (the simulator has another).

Driven over stdin/stdout, one JSON line each way, so the driver can read the
simulator's request count between steps:

- ``{"do": "refresh"}``: one refresh through the exporter's own wiring
  (``exporter.pipeline.open_pipeline``: its session, connector, client, runners and
  caches), with the collectors the worker was started with.
- ``{"do": "naive"}``: the same organization listed the way a cron script with the
  official SDK does: one request at a time, at the API's default page size.
- ``{"do": "calibrate"}``: the latency the simulator really gives at the benchmark's
  concurrency (its injected latency plus its own work), with a bare client.
- ``{"do": "scrape", ...}``: scrape cost on the snapshot of the last refresh.
- ``{"do": "quit"}``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any

import aiohttp
from pydantic import SecretStr

from bench import scrape_cost
from bench.sizes import SDK_DEFAULT_LIMIT
from exporter.clock import Clocks
from exporter.config import Settings
from exporter.health import ExporterHealth
from exporter.pipeline import enabled_collectors, open_pipeline

ADMIN_KEY = "sk-admin-benchmark"


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


async def serve(base_url: str, concurrency: int, collector_names: tuple[str, ...]) -> None:
    settings = Settings(
        admin_key=SecretStr(ADMIN_KEY),
        base_url=base_url,
        openai_concurrency=concurrency,
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
    async with open_pipeline(
        settings,
        collectors,
        observe_request=health.observe_request,
        observe_report=health.record,
        clocks=Clocks(),
    ) as (cache, _):
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line:
                return
            command = json.loads(line)
            answer: dict[str, Any]
            if command["do"] == "refresh":
                started, cpu = time.perf_counter(), time.process_time()
                await asyncio.gather(*cache.start_refresh())
                results = {report.result for report in health.last_reports.values()}
                snapshot = cache.current()
                keys = snapshot["api_keys"].rows.key_count if "api_keys" in snapshot else 0
                answer = {
                    "seconds": time.perf_counter() - started,
                    "cpu_seconds": time.process_time() - cpu,
                    "result": results.pop() if len(results) == 1 else "mixed",
                    "keys": keys,
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
    args = parser.parse_args()
    asyncio.run(serve(args.base_url, args.concurrency, tuple(args.collectors.split(","))))


if __name__ == "__main__":
    main()
