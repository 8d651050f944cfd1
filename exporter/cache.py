"""The caches: one per collector (TTL expiry, single-flight refresh, last good state
kept), and the ``SnapshotCache`` over them that a scrape asks.

A collector's ``TTLCache`` decides freshness: while it holds the state, scrapes make no
upstream request for that collector. When it has expired, the first scrape starts one
refresh and every scrape that arrives meanwhile shares it. A scrape waits for the
refreshes it started only as long as it can afford, then serves the last good states.
Each collector has its own schedule: one failing never delays or blanks another.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from cachetools import TTLCache

from exporter.clock import Clocks
from exporter.collectors.runner import RunOutcome
from exporter.snapshot import RefreshReport, ResourceState, Snapshot

log = logging.getLogger(__name__)

_FRESH = "state"
RefreshFunction = Callable[[ResourceState[Any] | None], Awaitable[RunOutcome]]
ReportObserver = Callable[[RefreshReport], None]


class CollectorCache:
    """One collector's state between refreshes."""

    def __init__(
        self,
        name: str,
        refresh: RefreshFunction,
        *,
        observe: ReportObserver,
        ttl: float,
        retry_interval: float,
        clocks: Clocks,
    ) -> None:
        self.name = name
        self._refresh = refresh
        self._observe = observe
        self._clocks = clocks
        # A good refresh stays fresh for the TTL; after a failed or partial one the next
        # try comes sooner (retry_interval), but still never on every scrape.
        timer = clocks.monotonic
        self._fresh: TTLCache[str, bool] = TTLCache(maxsize=1, ttl=ttl, timer=timer)
        self._settled: TTLCache[str, bool] = TTLCache(maxsize=1, ttl=retry_interval, timer=timer)
        self._last_good: ResourceState[Any] | None = None
        self._inflight: asyncio.Task[None] | None = None
        self.tried = False  # a first refresh has ended, whatever its result

    @property
    def last_good(self) -> ResourceState[Any] | None:
        """The newest state that exists, however old; None before the first one."""
        return self._last_good

    @property
    def refreshing(self) -> bool:
        return self._inflight is not None and not self._inflight.done()

    def is_fresh(self) -> bool:
        return _FRESH in self._fresh or _FRESH in self._settled

    def start_refresh(self) -> asyncio.Task[None]:
        """The running refresh, or a new one: never two at once."""
        if self._inflight is None or self._inflight.done():
            self._inflight = asyncio.create_task(self._run(), name=f"refresh-{self.name}")
        return self._inflight

    async def close(self) -> None:
        if self._inflight is not None:
            self._inflight.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._inflight

    async def _run(self) -> None:
        try:
            outcome = await self._refresh(self._last_good)
        except Exception:  # a bug must not stop future refreshes; say it loudly
            log.exception("%s refresh crashed; keeping the last good state", self.name)
            report = RefreshReport(self.name, "failure", self._clocks.wall(), 0.0)
            outcome = RunOutcome(self._last_good, report)
        if outcome.state is not None:
            self._last_good = outcome.state
        self.tried = True
        self._observe(outcome.report)
        target = self._fresh if outcome.report.result == "success" else self._settled
        self._fresh.clear()
        self._settled.clear()
        target[_FRESH] = True


class SnapshotCache:
    """Every enabled collector's cache; what a scrape and the landing page ask."""

    def __init__(self, caches: Sequence[CollectorCache]) -> None:
        self.caches = tuple(caches)

    def current(self) -> Snapshot:
        """The last good state of each collector that has one, without refreshing."""
        return Snapshot(
            {cache.name: cache.last_good for cache in self.caches if cache.last_good is not None}
        )

    @property
    def tried(self) -> bool:
        """Every collector's first refresh has ended, whatever its result."""
        return all(cache.tried for cache in self.caches)

    @property
    def ready(self) -> bool:
        """Every collector has tried once, and at least one has a state to serve."""
        return self.tried and any(cache.last_good is not None for cache in self.caches)

    def start_refresh(self) -> list[asyncio.Task[None]]:
        """Every collector's running refresh, or a new one (never two of one at once),
        whether fresh or not: at start, so the first scrape normally finds data."""
        return [cache.start_refresh() for cache in self.caches]

    async def get(self, wait: float) -> Snapshot:
        """A snapshot for a scrape that can wait ``wait`` seconds at most."""
        tasks = [cache.start_refresh() for cache in self.caches if not cache.is_fresh()]
        if tasks:
            # asyncio.wait never cancels: a scrape that gives up leaves the refreshes
            # running for the scrapes that share them.
            await asyncio.wait(tasks, timeout=max(wait, 0.0))
        return self.current()

    async def close(self) -> None:
        for cache in self.caches:
            await cache.close()
