"""Running the real ``openai-key-exporter`` command as a child process, on loopback."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def exporter_command() -> list[str]:
    found = shutil.which("openai-key-exporter", path=str(Path(sys.executable).parent))
    return [found] if found else [sys.executable, "-m", "exporter"]


@dataclass
class RunningExporter:
    process: asyncio.subprocess.Process
    url: str
    stderr_chunks: list[bytes] = field(default_factory=list)

    @property
    def stderr(self) -> str:
        return b"".join(self.stderr_chunks).decode(errors="replace")

    async def wait_until_ready(self, within: float = 20.0) -> None:
        """Polls /readyz until 200, at most ``within`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        async with aiohttp.ClientSession() as session:
            while loop.time() < deadline:
                if self.process.returncode is not None:
                    raise AssertionError(f"exporter exited early:\n{self.stderr}")
                try:
                    async with session.get(self.url + "/readyz") as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientConnectionError:
                    pass
                await asyncio.sleep(0.1)
        raise AssertionError(f"exporter not ready within {within}s:\n{self.stderr}")

    async def stop(self, within: float = 10.0) -> int:
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        return await asyncio.wait_for(self.process.wait(), within)


@asynccontextmanager
async def run_exporter(
    *args: str, env: Mapping[str, str] | None = None, port: int | None = None
) -> AsyncIterator[RunningExporter]:
    port = port or free_port()
    environment = {key: value for key, value in os.environ.items() if not key.startswith("OPENAI_")}
    environment.update(env or {})
    process = await asyncio.create_subprocess_exec(
        *exporter_command(),
        f"--web.listen-address=127.0.0.1:{port}",
        *args,
        env=environment,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    running = RunningExporter(process, f"http://127.0.0.1:{port}")

    async def drain() -> None:
        assert process.stdout is not None
        while chunk := await process.stdout.read(65536):
            running.stderr_chunks.append(chunk)

    reader = asyncio.create_task(drain())
    try:
        yield running
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await reader
