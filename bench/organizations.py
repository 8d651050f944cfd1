"""Several organizations in one exporter process (issue 12): ``ORGANIZATIONS`` of the
small size (1,000 keys each), all on one simulator, each with its own key file.

Measured from the exporter's own metrics, so exact: each organization's refresh
(``openai_exporter_collector_duration_seconds``, ending at its last success) and the
wall time from the first start to the last end; the simulator's most requests in flight
against the shared bound; then a probe of one organization beside a ``/metrics`` scrape
of a single-organization exporter of the same size, side by side, medians.
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path
from typing import Any

import yaml

from bench.exporter_process import PROMETHEUS_HEADERS, next_second, running_exporter
from bench.plan import Plan
from bench.sizes import Size
from bench.worker import ADMIN_KEY
from exporter.simulator.app import SimulatorState, serve_simulator
from exporter.simulator.faults import FaultInjector
from exporter.simulator.organization import build_organization
from tests.support import parse_samples, sample

ORGANIZATIONS = 20
SIZE = Size("thousand", 10, 100)  # 1,000 keys: one project page, 10 key pages
# api_keys alone: one project page and 8 key listings at once by default; here
# plan.concurrency, and the bound is four organizations' worth (web.units).
BOUND_ORGANIZATIONS = 4
PLAIN = {"Accept-Encoding": "identity"}


def write_config(directory: Path, base_url: str, count: int) -> Path:
    organizations = []
    for n in range(count):
        key_file = directory / f"org-{n:02d}.key"
        key_file.write_text(f"{ADMIN_KEY}-{n:02d}\n")
        organizations.append(
            {"name": f"org-{n:02d}", "admin_key_file": str(key_file), "base_url": base_url}
        )
    config = directory / "organizations.yaml"
    config.write_text(yaml.safe_dump({"organizations": organizations}))
    return config


async def measure_organizations(plan: Plan, count: int = ORGANIZATIONS) -> dict[str, Any]:
    state = SimulatorState(
        org=build_organization(SIZE.spec()), faults=FaultInjector(latency=plan.latency)
    )
    names = [f"org-{n:02d}" for n in range(count)]
    result: dict[str, Any] = {"organizations": count, "keys": SIZE.keys}
    async with serve_simulator(state) as base_url:
        with tempfile.TemporaryDirectory() as directory:
            config = write_config(Path(directory), base_url, count)
            async with running_exporter(
                base_url, concurrency=plan.concurrency, ttl="1h", config_file=config
            ) as exporter:
                await exporter.wait_ready(120)
                spans = []
                for name in names:
                    _, body = await exporter.scrape(PLAIN, f"/probe?target={name}")
                    samples = parse_samples(body.decode())
                    duration = sample(
                        samples, "openai_exporter_collector_duration_seconds", collector="api_keys"
                    )
                    ended = sample(
                        samples,
                        "openai_exporter_collector_last_success_timestamp_seconds",
                        collector="api_keys",
                    )
                    if duration is None or ended is None:
                        raise RuntimeError(f"{name} has no successful refresh")
                    spans.append((ended - duration, ended))
                result["refresh_seconds"] = [end - start for start, end in spans]
                result["wall_seconds"] = max(e for _, e in spans) - min(s for s, _ in spans)
                result["most_in_flight"] = state.most_in_flight
                result["requests"] = len(state.requests)
                result["probe"] = await _timed(exporter, plan, f"/probe?target={names[0]}")
            async with running_exporter(base_url, concurrency=plan.concurrency, ttl="1h") as single:
                await single.wait_ready(120)
                _, body = await single.scrape(PLAIN)
                alone = sample(
                    parse_samples(body.decode()),
                    "openai_exporter_collector_duration_seconds",
                    collector="api_keys",
                )
                result["alone_seconds"] = alone
                result["metrics"] = await _timed(single, plan, "/metrics")
    result["bound"] = BOUND_ORGANIZATIONS * (1 + 1 + plan.concurrency)
    return result


async def _timed(exporter: Any, plan: Plan, path: str) -> list[float]:
    await exporter.scrape(PROMETHEUS_HEADERS, path)  # the first prepares the text
    seconds = []
    for _ in range(plan.http_scrapes):
        await next_second()
        took, _ = await exporter.scrape(PROMETHEUS_HEADERS, path)
        seconds.append(took)
    return seconds


def organizations_table(result: dict[str, Any]) -> str:
    refreshes = result["refresh_seconds"]
    alone = result["alone_seconds"]
    total = sum(refreshes)
    probe, metrics = statistics.median(result["probe"]), statistics.median(result["metrics"])
    lines = [
        f"Several organizations: {result['organizations']} of {result['keys']:,} keys each, "
        "one process, one shared bound",
        "| refreshes | one alone | median overlapped | sum overlapped | wall time "
        "| wall / (N x alone) | most in flight | bound |",
        "|---|---|---|---|---|---|---|---|",
        f"| {len(refreshes)} | {alone:.2f} s | {statistics.median(refreshes):.2f} s "
        f"| {total:.2f} s | {result['wall_seconds']:.2f} s "
        f"| {result['wall_seconds'] / (len(refreshes) * alone):.2f} "
        f"| {result['most_in_flight']} | {result['bound']} |",
        "",
        "| scrape (OpenMetrics, gzip) | median | ratio |",
        "|---|---|---|",
        f"| /metrics, one organization | {metrics * 1000:.1f} ms | 1.00 |",
        f"| /probe, one of {result['organizations']} | {probe * 1000:.1f} ms "
        f"| {probe / metrics:.2f} |",
    ]
    return "\n".join(lines)
