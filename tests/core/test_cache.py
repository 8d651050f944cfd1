"""The caches: TTL freshness per collector, single flight, bounded waits, last good kept."""

from __future__ import annotations

import asyncio
from typing import Any

from exporter.cache import CollectorCache, SnapshotCache
from exporter.clock import Clocks
from exporter.collectors.runner import RunOutcome
from exporter.snapshot import Failure, RefreshReport, ResourceState, Snapshot


class FakeTimer:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class ScriptedRefresh:
    """Hands out outcomes in turn, counting calls; an Event can hold a refresh open."""

    def __init__(self, *results: str, name: str = "keys") -> None:
        self.name = name
        self.results = list(results)
        self.calls = 0
        self.release = asyncio.Event()
        self.release.set()

    async def __call__(self, previous: ResourceState[Any] | None) -> RunOutcome:
        self.calls += 1
        await self.release.wait()
        result = self.results.pop(0) if self.results else "success"
        if result == "failure":
            failure = Failure("server_error", "boom")
            return RunOutcome(previous, RefreshReport(self.name, "failure", 0.0, 0.1, (failure,)))
        state = ResourceState(f"{self.name} rows {self.calls}", 0.0)
        return RunOutcome(state, RefreshReport(self.name, "success", 0.0, 0.1))


class Reports(list[RefreshReport]):
    def last(self, name: str) -> RefreshReport:
        return [report for report in self if report.collector == name][-1]


def collector_cache(
    refresh: ScriptedRefresh, timer: FakeTimer, reports: Reports, *, ttl: float = 300
) -> CollectorCache:
    return CollectorCache(
        refresh.name,
        refresh,
        observe=reports.append,
        ttl=ttl,
        retry_interval=60,
        clocks=Clocks(monotonic=timer),
    )


def make_cache(refresh: ScriptedRefresh, timer: FakeTimer) -> tuple[SnapshotCache, Reports]:
    reports = Reports()
    return SnapshotCache([collector_cache(refresh, timer, reports)]), reports


def rows(snapshot: Snapshot, name: str = "keys") -> object:
    return snapshot[name].rows if name in snapshot else None


async def test_a_fresh_state_is_served_without_refreshing() -> None:
    refresh, timer = ScriptedRefresh(), FakeTimer()
    cache, _ = make_cache(refresh, timer)
    first = await cache.get(wait=5)
    timer.now += 299
    assert (await cache.get(wait=5))["keys"] is first["keys"]
    assert refresh.calls == 1


async def test_ttl_expiry_triggers_a_refresh() -> None:
    refresh, timer = ScriptedRefresh(), FakeTimer()
    cache, _ = make_cache(refresh, timer)
    await cache.get(wait=5)
    timer.now += 301
    second = await cache.get(wait=5)
    assert refresh.calls == 2
    assert rows(second) == "keys rows 2"


async def test_concurrent_scrapes_share_one_refresh() -> None:
    refresh, timer = ScriptedRefresh(), FakeTimer()
    cache, _ = make_cache(refresh, timer)
    refresh.release.clear()
    scrapes = [asyncio.create_task(cache.get(wait=5)) for _ in range(100)]
    await asyncio.sleep(0)
    refresh.release.set()
    results = await asyncio.gather(*scrapes)
    assert refresh.calls == 1
    assert all(result["keys"] is results[0]["keys"] for result in results)


async def test_a_scrape_waits_only_its_budget_then_serves_the_last_good() -> None:
    refresh, timer = ScriptedRefresh(), FakeTimer()
    cache, _ = make_cache(refresh, timer)
    first = await cache.get(wait=5)
    timer.now += 301
    refresh.release.clear()
    served = await asyncio.wait_for(cache.get(wait=0.05), timeout=2)
    assert served["keys"] is first["keys"]
    [keys] = cache.caches
    assert keys.refreshing  # the refresh goes on for the next scrape
    refresh.release.set()
    await keys.start_refresh()
    assert keys.last_good is not first["keys"]


async def test_a_failed_refresh_keeps_the_last_good_state_and_retries_sooner() -> None:
    refresh, timer = ScriptedRefresh("success", "failure", "success"), FakeTimer()
    cache, reports = make_cache(refresh, timer)
    good = await cache.get(wait=5)
    timer.now += 301
    assert (await cache.get(wait=5))["keys"] is good["keys"]
    assert reports.last("keys").result == "failure"
    timer.now += 30  # within the retry interval: no hammering
    await cache.get(wait=5)
    assert refresh.calls == 2
    timer.now += 31
    recovered = await cache.get(wait=5)
    assert refresh.calls == 3
    assert recovered["keys"] is not good["keys"]
    assert reports.last("keys").result == "success"


async def test_nothing_before_the_first_refresh_completes() -> None:
    refresh, timer = ScriptedRefresh(), FakeTimer()
    cache, _ = make_cache(refresh, timer)
    refresh.release.clear()
    assert dict(await cache.get(wait=0.01)) == {}
    assert not cache.ready
    refresh.release.set()
    await cache.caches[0].start_refresh()
    assert cache.ready


async def test_a_crashing_refresh_is_a_failure_not_a_dead_cache() -> None:
    timer = FakeTimer()
    calls = 0

    async def crash(previous: ResourceState[Any] | None) -> RunOutcome:
        nonlocal calls
        calls += 1
        raise RuntimeError("bug")

    reports = Reports()
    cache = SnapshotCache(
        [
            CollectorCache(
                "keys",
                crash,
                observe=reports.append,
                ttl=300,
                retry_interval=60,
                clocks=Clocks(monotonic=timer),
            )
        ]
    )
    assert dict(await cache.get(wait=1)) == {}
    assert reports.last("keys").result == "failure"
    timer.now += 61
    await cache.get(wait=1)
    assert calls == 2


async def test_close_cancels_a_running_refresh() -> None:
    refresh, timer = ScriptedRefresh(), FakeTimer()
    cache, _ = make_cache(refresh, timer)
    refresh.release.clear()
    task = cache.caches[0].start_refresh()
    await asyncio.sleep(0)
    await cache.close()
    assert task.cancelled()


async def test_one_failing_collector_never_blanks_or_delays_another() -> None:
    timer, reports = FakeTimer(), Reports()
    keys = ScriptedRefresh("success", "success", name="keys")
    users = ScriptedRefresh("success", "failure", name="users")
    cache = SnapshotCache(
        [collector_cache(keys, timer, reports), collector_cache(users, timer, reports)]
    )
    first = await cache.get(wait=5)
    timer.now += 301
    second = await cache.get(wait=5)
    assert rows(second, "keys") == "keys rows 2"
    assert second["users"] is first["users"]  # the failed listing kept its last good rows
    assert reports.last("users").result == "failure"
    assert reports.last("keys").result == "success"


async def test_each_collector_refreshes_on_its_own_schedule() -> None:
    timer, reports = FakeTimer(), Reports()
    fast = ScriptedRefresh(name="fast")
    slow = ScriptedRefresh(name="slow")
    cache = SnapshotCache(
        [
            collector_cache(fast, timer, reports, ttl=60),
            collector_cache(slow, timer, reports, ttl=3600),
        ]
    )
    await cache.get(wait=5)
    for _ in range(5):
        timer.now += 61
        await cache.get(wait=5)
    assert (fast.calls, slow.calls) == (6, 1)


async def test_a_slow_collector_does_not_hold_back_the_others() -> None:
    timer, reports = FakeTimer(), Reports()
    quick = ScriptedRefresh(name="quick")
    stuck = ScriptedRefresh(name="stuck")
    stuck.release.clear()
    cache = SnapshotCache(
        [collector_cache(quick, timer, reports), collector_cache(stuck, timer, reports)]
    )
    served = await asyncio.wait_for(cache.get(wait=0.05), timeout=2)
    assert rows(served, "quick") == "quick rows 1"
    assert "stuck" not in served
    stuck.release.set()
    await cache.close()
