"""What a long-running exporter must not accumulate: tasks, file descriptors, memory."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


def open_fds(pid: int | str = "self") -> int:
    return sum(1 for _ in Path(f"/proc/{pid}/fd").iterdir())


def rss_bytes(pid: int | str = "self") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc status")


@dataclass(frozen=True)
class Footprint:
    tasks: int
    fds: int
    rss: int
    objects: int

    def growth_since(self, start: Footprint) -> Footprint:
        return Footprint(
            self.tasks - start.tasks,
            self.fds - start.fds,
            self.rss - start.rss,
            self.objects - start.objects,
        )


def running_tasks() -> int:
    """Tasks of this process, but for the in-process simulator's one task per open
    connection (aiohttp's ``RequestHandler.start``, alive while a keep-alive connection
    is): a connection the pool opened later is counted by the fd bound, not as a leaked
    task (under load the pool may hold one more connection at the end than at the start)."""
    return sum(
        1
        for task in asyncio.all_tasks()
        if getattr(task.get_coro(), "__qualname__", "") != "RequestHandler.start"
    )


def footprint() -> Footprint:
    """This process now, after a full collection so only live objects count."""
    gc.collect()
    return Footprint(running_tasks(), open_fds(), rss_bytes(), len(gc.get_objects()))


async def quiesce(baseline_tasks: int, *, within: float = 15.0) -> int:
    """Let stragglers (a slow fault's handler still sleeping) finish; the task count then."""
    for _ in range(int(within / 0.05)):
        if running_tasks() <= baseline_tasks:
            break
        await asyncio.sleep(0.05)
    return running_tasks()


class MessageLog(logging.Handler):
    """Keeps log lines as text only: pytest's own capture keeps whole records, whose
    arguments (exceptions with their tracebacks and frames) would look like a leak."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[tuple[int, str, str]] = []
        self.setFormatter(logging.Formatter("%(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append((record.levelno, record.name, self.format(record)))

    def warnings(self) -> list[tuple[str, str]]:
        return [(name, text) for level, name, text in self.lines if level >= logging.WARNING]

    @property
    def text(self) -> str:
        return "\n".join(text for _, _, text in self.lines)


@contextlib.contextmanager
def captured_lines(*names: str) -> Iterator[MessageLog]:
    """Lines logged under `names`, kept away from pytest's record-keeping capture."""
    handler = MessageLog()
    loggers = [logging.getLogger(name) for name in names]
    saved = [(logger.propagate, logger.level) for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.propagate = False
        logger.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        for logger, (propagate, level) in zip(loggers, saved, strict=True):
            logger.removeHandler(handler)
            logger.propagate = propagate
            logger.setLevel(level)
