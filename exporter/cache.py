"""The snapshot cache: TTL expiry, single-flight refresh, last good snapshot kept.

A ``TTLCache`` decides freshness: while it holds the snapshot, scrapes make no
upstream request. When it has expired, the first scrape starts one refresh and
every scrape that arrives meanwhile shares it. A scrape waits for that refresh only
as long as it can afford, then serves the last good snapshot.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from cachetools import TTLCache

from exporter.health import ExporterHealth, RefreshReport
from exporter.refresh import RefreshOutcome
from exporter.snapshot import Inventory

log = logging.getLogger(__name__)

_FRESH = "inventory"
RefreshFunction = Callable[[Inventory | None], Awaitable[RefreshOutcome]]


class InventoryCache:
    def __init__(
        self,
        refresh: RefreshFunction,
        *,
        health: ExporterHealth,
        ttl: float,
        retry_interval: float,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self._refresh = refresh
        self._health = health
        # A good refresh stays fresh for the TTL; after a failed or partial one the next
        # try comes sooner (retry_interval), but still never on every scrape.
        self._fresh: TTLCache[str, Inventory | None] = TTLCache(maxsize=1, ttl=ttl, timer=timer)
        self._settled: TTLCache[str, Inventory | None] = TTLCache(
            maxsize=1, ttl=retry_interval, timer=timer
        )
        self._last_good: Inventory | None = None
        self._inflight: asyncio.Task[None] | None = None

    @property
    def last_good(self) -> Inventory | None:
        """The newest snapshot that exists, however old; None before the first one."""
        return self._last_good

    @property
    def refreshing(self) -> bool:
        return self._inflight is not None and not self._inflight.done()

    def is_fresh(self) -> bool:
        return _FRESH in self._fresh or _FRESH in self._settled

    def start_refresh(self) -> asyncio.Task[None]:
        """The running refresh, or a new one: never two at once."""
        if self._inflight is None or self._inflight.done():
            self._inflight = asyncio.create_task(self._run(), name="inventory-refresh")
        return self._inflight

    async def get(self, wait: float) -> Inventory | None:
        """A snapshot for a scrape that can wait ``wait`` seconds at most."""
        if self.is_fresh():
            return self._last_good
        task = self.start_refresh()
        with contextlib.suppress(TimeoutError):
            # shield: a scrape that gives up must not cancel the refresh others share.
            await asyncio.wait_for(asyncio.shield(task), timeout=max(wait, 0.0))
        return self._last_good

    async def close(self) -> None:
        if self._inflight is not None:
            self._inflight.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._inflight

    async def _run(self) -> None:
        try:
            outcome = await self._refresh(self._last_good)
        except Exception:  # a bug must not stop future refreshes; say it loudly
            log.exception("refresh crashed; keeping the last good snapshot")
            report = RefreshReport("failure", time.time(), 0.0, ())
            outcome = RefreshOutcome(self._last_good, report)
        if outcome.inventory is not None:
            self._last_good = outcome.inventory
        self._health.record(outcome.report)
        target = self._fresh if outcome.report.result == "success" else self._settled
        self._fresh.clear()
        self._settled.clear()
        target[_FRESH] = self._last_good
