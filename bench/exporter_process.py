"""The real ``openai-key-exporter`` command, for what only a whole process shows:
resident memory, time to answer /metrics over HTTP, and scrape storms."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from bench.worker import ADMIN_KEY

# What Prometheus 2.x sends: OpenMetrics first, gzip always.
PROMETHEUS_HEADERS = {
    "Accept": "application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
    "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
    "Accept-Encoding": "gzip",
    "X-Prometheus-Scrape-Timeout-Seconds": "10",
}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _command() -> list[str]:
    found = shutil.which("openai-key-exporter", path=str(Path(sys.executable).parent))
    return [found] if found else [sys.executable, "-m", "exporter"]


@dataclass
class Exporter:
    process: asyncio.subprocess.Process
    url: str
    session: aiohttp.ClientSession

    def memory_kib(self) -> dict[str, int]:
        """Resident memory now (VmRSS) and at its peak so far (VmHWM), in KiB."""
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        return {name: int(fields[name].split()[0]) for name in ("VmRSS", "VmHWM")}

    async def wait_ready(self, within: float) -> None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if self.process.returncode is not None:
                raise RuntimeError("the exporter exited before it was ready")
            try:
                async with self.session.get(self.url + "/readyz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.1)
        raise RuntimeError(f"the exporter was not ready within {within:g}s")

    async def scrape(self, headers: dict[str, str]) -> tuple[float, bytes]:
        """Seconds until the whole body arrived, and the body as sent."""
        started = time.perf_counter()
        async with self.session.get(
            self.url + "/metrics", headers=headers, auto_decompress=False
        ) as response:
            response.raise_for_status()
            body = await response.read()
        return time.perf_counter() - started, body


@asynccontextmanager
async def running_exporter(base_url: str, *, concurrency: int, ttl: str) -> AsyncIterator[Exporter]:
    port = _free_port()
    environment = {key: value for key, value in os.environ.items() if not key.startswith("OPENAI")}
    environment.update({"OPENAI_ADMIN_KEY": ADMIN_KEY, "OPENAI_BASE_URL": base_url})
    process = await asyncio.create_subprocess_exec(
        *_command(),
        f"--web.listen-address=127.0.0.1:{port}",
        f"--openai.concurrency={concurrency}",
        f"--cache.ttl={ttl}",
        f"--cache.retry-interval={ttl}",
        "--openai.refresh-timeout=1h",
        "--log.level=warning",
        env=environment,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
    )
    connector = aiohttp.TCPConnector(limit=0)  # a storm needs every scrape in flight at once
    timeout = aiohttp.ClientTimeout(total=None)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        try:
            yield Exporter(process, f"http://127.0.0.1:{port}", session)
        finally:
            if process.returncode is None:
                process.terminate()
            await asyncio.wait_for(process.wait(), 30)


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
