"""The cache: TTL freshness, single flight, bounded waits, last good snapshot kept."""

import asyncio

from exporter.cache import InventoryCache
from exporter.errors import UpstreamError
from exporter.health import ExporterHealth, RefreshReport
from exporter.refresh import RefreshOutcome
from exporter.snapshot import Inventory, ProjectRecord


class FakeTimer:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class ScriptedRefresh:
    """Hands out outcomes in turn, counting calls; an Event can hold a refresh open."""

    def __init__(self, *results: str) -> None:
        self.results = list(results)
        self.calls = 0
        self.release = asyncio.Event()
        self.release.set()

    async def __call__(self, previous: Inventory | None) -> RefreshOutcome:
        self.calls += 1
        await self.release.wait()
        result = self.results.pop(0) if self.results else "success"
        if result == "failure":
            error = UpstreamError("server_error", "boom", endpoint="projects", status=500)
            return RefreshOutcome(previous, RefreshReport("failure", 0.0, 0.1, (error,)))
        inventory = Inventory((ProjectRecord(f"proj_{self.calls}", "p", "active", ()),), 0.0)
        return RefreshOutcome(inventory, RefreshReport("success", 0.0, 0.1, ()))


def make_cache(refresh: ScriptedRefresh, timer: FakeTimer) -> tuple[InventoryCache, ExporterHealth]:
    health = ExporterHealth()
    cache = InventoryCache(refresh, health=health, ttl=300, retry_interval=60, timer=timer)
    return cache, health


async def test_a_fresh_snapshot_is_served_without_refreshing() -> None:
    refresh, timer = ScriptedRefresh(), FakeTimer()
    cache, _ = make_cache(refresh, timer)
    first = await cache.get(wait=5)
    timer.now += 299
    assert await cache.get(wait=5) is first
    assert refresh.calls == 1


async def test_ttl_expiry_triggers_a_refresh() -> None:
    refresh, timer = ScriptedRefresh(), FakeTimer()
    cache, _ = make_cache(refresh, timer)
    first = await cache.get(wait=5)
    timer.now += 301
    second = await cache.get(wait=5)
    assert refresh.calls == 2
    assert first is not None
    assert second is not None
    assert second.projects[0].id == "proj_2"


async def test_concurrent_scrapes_share_one_refresh() -> None:
    refresh, timer = ScriptedRefresh(), FakeTimer()
    cache, _ = make_cache(refresh, timer)
    refresh.release.clear()
    scrapes = [asyncio.create_task(cache.get(wait=5)) for _ in range(100)]
    await asyncio.sleep(0)
    refresh.release.set()
    results = await asyncio.gather(*scrapes)
    assert refresh.calls == 1
    assert all(result is results[0] and result is not None for result in results)


async def test_a_scrape_waits_only_its_budget_then_serves_the_last_good() -> None:
    refresh, timer = ScriptedRefresh(), FakeTimer()
    cache, _ = make_cache(refresh, timer)
    first = await cache.get(wait=5)
    timer.now += 301
    refresh.release.clear()
    served = await asyncio.wait_for(cache.get(wait=0.05), timeout=2)
    assert served is first
    assert cache.refreshing  # the refresh goes on for the next scrape
    refresh.release.set()
    await cache.start_refresh()
    assert cache.last_good is not first


async def test_a_failed_refresh_keeps_the_last_good_snapshot_and_retries_sooner() -> None:
    refresh, timer = ScriptedRefresh("success", "failure", "success"), FakeTimer()
    cache, health = make_cache(refresh, timer)
    good = await cache.get(wait=5)
    timer.now += 301
    assert await cache.get(wait=5) is good
    assert not health.up
    timer.now += 30  # within the retry interval: no hammering
    await cache.get(wait=5)
    assert refresh.calls == 2
    timer.now += 31
    recovered = await cache.get(wait=5)
    assert refresh.calls == 3
    assert recovered is not good
    assert health.up


async def test_nothing_before_the_first_refresh_completes() -> None:
    refresh, timer = ScriptedRefresh(), FakeTimer()
    cache, _ = make_cache(refresh, timer)
    refresh.release.clear()
    assert await cache.get(wait=0.01) is None
    refresh.release.set()
    await cache.start_refresh()
    assert cache.last_good is not None


async def test_a_crashing_refresh_is_a_failure_not_a_dead_cache() -> None:
    timer = FakeTimer()
    calls = 0

    async def crash(previous: Inventory | None) -> RefreshOutcome:
        nonlocal calls
        calls += 1
        raise RuntimeError("bug")

    health = ExporterHealth()
    cache = InventoryCache(crash, health=health, ttl=300, retry_interval=60, timer=timer)
    assert await cache.get(wait=1) is None
    assert health.last_report is not None
    assert health.last_report.result == "failure"
    timer.now += 61
    await cache.get(wait=1)
    assert calls == 2


async def test_close_cancels_a_running_refresh() -> None:
    refresh, timer = ScriptedRefresh(), FakeTimer()
    cache, _ = make_cache(refresh, timer)
    refresh.release.clear()
    task = cache.start_refresh()
    await asyncio.sleep(0)
    await cache.close()
    assert task.cancelled()
