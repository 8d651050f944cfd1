"""The real ``openai-key-exporter`` command, for what only a whole process shows:
resident memory, time to answer /metrics over HTTP, and scrape storms."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from bench.worker import ADMIN_KEY
from exporter.collectors.catalog import COLLECTOR_NAMES
from tests.process import RunningExporter, run_exporter

# What Prometheus 2.x sends: OpenMetrics first, gzip always.
PROMETHEUS_HEADERS = {
    "Accept": "application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
    "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
    "Accept-Encoding": "gzip",
    "X-Prometheus-Scrape-Timeout-Seconds": "10",
}


@dataclass
class Exporter:
    running: RunningExporter
    session: aiohttp.ClientSession

    @property
    def url(self) -> str:
        return self.running.url

    def memory_kib(self) -> dict[str, int]:
        """Resident memory now (VmRSS) and at its peak so far (VmHWM), in KiB."""
        status = Path(f"/proc/{self.running.process.pid}/status").read_text()
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        return {name: int(fields[name].split()[0]) for name in ("VmRSS", "VmHWM")}

    async def wait_ready(self, within: float) -> None:
        await self.running.wait_until_ready(within)

    async def scrape(self, headers: dict[str, str], path: str = "/metrics") -> tuple[float, bytes]:
        """Seconds until the whole body arrived, and the body as sent."""
        started = time.perf_counter()
        async with self.session.get(
            self.url + path, headers=headers, auto_decompress=False
        ) as response:
            response.raise_for_status()
            body = await response.read()
        return time.perf_counter() - started, body


@asynccontextmanager
async def running_exporter(
    base_url: str, *, concurrency: int, ttl: str, config_file: Path | None = None
) -> AsyncIterator[Exporter]:
    """The command on the simulator at ``base_url``, or on the organizations of
    ``config_file`` (each with its own key file and base URL)."""
    env = (
        {"OPENAI_ADMIN_KEY": ADMIN_KEY, "OPENAI_BASE_URL": base_url}
        if config_file is None
        else {"OPENAI_EXPORTER_CONFIG_FILE": str(config_file)}
    )
    async with run_exporter(
        f"--openai.concurrency={concurrency}",
        f"--cache.ttl={ttl}",
        f"--cache.retry-interval={ttl}",
        "--openai.refresh-timeout=1h",
        "--log.level=warning",
        # The key inventory alone, as before the other collectors existed, so memory per key
        # and the storm's request count compare with earlier runs; the refresh part
        # measures every default collector side by side.
        *(f"--no-collector.{name}" for name in COLLECTOR_NAMES if name != "api_keys"),
        env=env,
        capture_output=False,  # its warnings show while the benchmark runs
    ) as running:
        connector = aiohttp.TCPConnector(limit=0)  # a storm needs every scrape in flight at once
        timeout = aiohttp.ClientTimeout(total=None)
        try:
            async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
                yield Exporter(running, session)
        finally:
            await running.stop(30)  # SIGTERM, a clean exit; run_exporter kills only a straggler


async def next_second() -> None:
    """Sleep into the next wall-clock second: a new second means new ages to render,
    as for scrapes 15 s apart (within one second the exporter reuses its text)."""
    await asyncio.sleep(1.02 - time.time() % 1.0)


async def storm(
    exporter: Exporter, *, scrapes: int, count: Callable[[], int], ttl: float
) -> dict[str, int]:
    """``scrapes`` concurrent scrapes on an expired cache; upstream requests they caused."""
    await asyncio.sleep(ttl + 0.5)  # the snapshot of the startup refresh has expired
    before = count()
    # A long scrape timeout: every scrape waits for the one refresh they share, so when
    # the last answer arrives that refresh is over and counted.
    headers = {**PROMETHEUS_HEADERS, "X-Prometheus-Scrape-Timeout-Seconds": "3600"}
    answers = await asyncio.gather(*(exporter.scrape(headers) for _ in range(scrapes)))
    return {"requests": count() - before, "answered": sum(1 for _, body in answers if body)}
