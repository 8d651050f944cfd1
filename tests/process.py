"""Running the real ``openai-key-exporter`` command as a child process, on loopback.

Shared by the tests and the benchmarks (bench/), so that both start it the same way.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def child_environment(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without its ``OPENAI_*`` variables, plus ``env``: a
    child exporter sees only the settings a test gives it (``clean_environment`` is the
    same for settings read in this process)."""
    environment = {key: value for key, value in os.environ.items() if not key.startswith("OPENAI_")}
    environment.update(env or {})
    return environment


def venv_program(name: str, module: str) -> list[str]:
    """The console script ``name`` of this interpreter's environment, else ``-m module``."""
    found = shutil.which(name, path=str(Path(sys.executable).parent))
    return [found] if found else [sys.executable, "-m", module]


def exporter_command() -> list[str]:
    return venv_program("openai-key-exporter", "exporter")


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
    *args: str,
    env: Mapping[str, str] | None = None,
    port: int | None = None,
    command: Sequence[str] | None = None,
    capture_output: bool = True,
) -> AsyncIterator[RunningExporter]:
    """The exporter (``command``: ``exporter_command()`` unless given) on ``port``.

    Its output is kept in ``stderr`` for assertions; with ``capture_output=False`` its
    log goes to this process's stderr instead, live, as a benchmark's operator wants it
    (``stderr`` stays empty), and its stdout is discarded.
    """
    port = port or free_port()
    process = await asyncio.create_subprocess_exec(
        *(command or exporter_command()),
        f"--web.listen-address=127.0.0.1:{port}",
        *args,
        env=child_environment(env),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE if capture_output else asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.STDOUT if capture_output else None,
    )
    running = RunningExporter(process, f"http://127.0.0.1:{port}")

    async def drain() -> None:
        if process.stdout is None:  # not captured
            return
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
