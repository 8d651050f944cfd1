"""The data path of one organization, assembled: key source, client factory over the
shared upstream (``upstream.shared``), one runner and one cache per enabled collector,
and the snapshot cache over them."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING

import aiohttp
from aiohttp.helpers import get_env_proxy_for_url
from pydantic import SecretStr
from yarl import URL

from exporter.cache import CollectorCache, ReportObserver, SnapshotCache
from exporter.clock import Clocks
from exporter.collectors import build_collectors
from exporter.collectors.base import AnyCollector, Options
from exporter.collectors.runner import CollectorRunner
from exporter.config import Settings
from exporter.filters import ProjectFilter
from exporter.upstream.client import AdminApiClient, RequestObserver
from exporter.upstream.keysource import AdminKeySource
from exporter.upstream.retry import RetryPolicy
from exporter.upstream.shared import SharedUpstream

if TYPE_CHECKING:  # the simulator is loaded only with --demo
    from exporter.organizations.schema import DemoOrganization

DEMO_ADMIN_KEY = "sk-admin-demo-simulated"


def enabled_collectors(settings: Settings) -> tuple[AnyCollector, ...]:
    """The collectors the settings switch on, configured from them."""
    options = Options(
        include_archived=settings.openai_include_archived,
        project_filter=ProjectFilter(
            settings.openai_project_include, settings.openai_project_exclude
        ).keeps,
        concurrency=settings.openai_concurrency,
        emails=settings.metrics_owner_email,
        usage_lookback=settings.usage_lookback,
        usage_group_by=settings.usage_dimensions,
        costs_lookback=settings.costs_lookback,
        audit_overlap=settings.audit_overlap,
        audit_backfill=settings.audit_backfill,
        audit_backfill_max_pages=settings.audit_backfill_max_pages,
        audit_log_events=settings.audit_log_events,
        audit_log_personal_data=settings.audit_log_personal_data,
    )
    return build_collectors(settings.enabled_collectors, options)


def collector_ttl(settings: Settings, name: str) -> float:
    """How long a collector's state is served before a refresh: ``--usage.interval`` for
    usage, ``--costs.interval`` for costs and spend limits, ``--audit.interval`` for the
    audit log, else ``--cache.ttl``."""
    if name == "usage":
        return settings.usage_interval
    if name == "audit_logs":
        return settings.audit_interval
    if name in ("costs", "spend_limits"):
        return settings.costs_interval
    return settings.cache_ttl


def organization_bound(collectors: Sequence[AnyCollector]) -> int:
    """Upstream requests one organization can have in flight: every collector's
    listings at once (their refreshes run side by side), plus one."""
    return 1 + sum(collector.max_in_flight() for collector in collectors)


@asynccontextmanager
async def open_pipeline(
    settings: Settings,
    collectors: tuple[AnyCollector, ...],
    *,
    upstream: SharedUpstream,
    observe_request: RequestObserver,
    observe_report: ReportObserver,
    clocks: Clocks,
    organization: str | None = None,
    demo: DemoOrganization | None = None,
) -> AsyncIterator[tuple[SnapshotCache, str]]:
    """One organization's snapshot cache over the shared upstream; yields it with the
    base URL in use. ``organization`` names it in log lines (several organizations
    served); with ``--demo``, ``demo`` is its simulated organization (None: the demo's
    own)."""
    async with AsyncExitStack() as stack:
        base_url = settings.base_url
        if settings.demo:
            base_url = await stack.enter_async_context(_demo_simulator(demo))
            keys = AdminKeySource(key=SecretStr(DEMO_ADMIN_KEY))
        elif settings.admin_key_file is not None:
            keys = AdminKeySource(path=settings.admin_key_file)
        else:
            assert settings.admin_key is not None  # guaranteed by Settings validation
            keys = AdminKeySource(key=settings.admin_key)
        proxy, proxy_auth = _env_proxy(base_url)
        retry = RetryPolicy(max_retries=settings.openai_max_retries)
        rng = random.Random()  # noqa: S311 - jitter, not security

        def new_client() -> AdminApiClient:
            return AdminApiClient(
                upstream.session,
                base_url,
                keys.current(),
                observe=observe_request,
                retry=retry,
                request_timeout=settings.openai_request_timeout,
                clocks=clocks,
                rng=rng,
                slots=upstream.slots,
                proxy=proxy,
                proxy_auth=proxy_auth,
            )

        caches = []
        for collector in collectors:
            runner = CollectorRunner(
                collector,
                new_client,
                deadline=settings.openai_refresh_timeout,
                clocks=clocks,
                organization=organization,
            )
            ttl = collector_ttl(settings, collector.name)
            caches.append(
                CollectorCache(
                    collector.name,
                    runner.run,
                    observe=observe_report,
                    ttl=ttl,
                    retry_interval=min(settings.retry_interval, ttl),
                    clocks=clocks,
                )
            )
        cache = SnapshotCache(caches)
        try:
            yield cache, base_url
        finally:
            await cache.close()


def _env_proxy(base_url: str) -> tuple[URL | None, aiohttp.BasicAuth | None]:
    """The proxy HTTPS_PROXY / HTTP_PROXY / NO_PROXY give for the API, as aiohttp reads them.

    Looked up once: with ``trust_env`` aiohttp would look it up (and read ~/.netrc) on
    worker threads at every request, two thread hops that cost up to ~10 ms each while
    the event loop is busy (a refresh of 5,000 projects measured 1.26x its lower bound
    with them, 1.15x without).
    """
    try:
        return get_env_proxy_for_url(URL(base_url))
    except LookupError:  # no proxy set, or NO_PROXY exempts the API's host
        return None, None


@asynccontextmanager
async def _demo_simulator(demo: DemoOrganization | None) -> AsyncIterator[str]:
    """One in-process simulator serving one simulated organization: each organization of
    ``--demo --config.file`` has its own, so its faults touch no other."""
    from exporter.organizations.demo import demo_faults, demo_spec
    from exporter.simulator.app import SimulatorState, serve_simulator
    from exporter.simulator.demo import demo_organization
    from exporter.simulator.faults import FaultInjector
    from exporter.simulator.organization import build_organization

    if demo is None:
        state = SimulatorState(org=demo_organization(DEMO_ADMIN_KEY), faults=FaultInjector())
    else:
        state = SimulatorState(org=build_organization(demo_spec(demo)), faults=demo_faults(demo))
    async with serve_simulator(state) as base_url:
        yield base_url
