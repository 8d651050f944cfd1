"""The aiohttp application: ``/``, the metrics path, ``/healthz`` and ``/readyz``."""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor

from aiohttp import web
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from exporter.cache import SnapshotCache
from exporter.clock import Clocks
from exporter.config import Settings
from exporter.pipeline import organization_bound
from exporter.rendering.renderer import SnapshotRenderer
from exporter.snapshot import Snapshot
from exporter.upstream.shared import SharedUpstream, open_shared_upstream
from exporter.web.landing import CollectorStatus, LandingStatus, render_landing
from exporter.web.units import (
    OrganizationPlan,
    OrganizationUnit,
    open_organization,
    plan_organization,
)
from exporter.webconfig import WebConfig, load_web_config, protect

log = logging.getLogger(__name__)

SETTINGS = web.AppKey("settings", Settings)
CLOCKS = web.AppKey("clocks", Clocks)
RENDER_THREAD = web.AppKey("render_thread", ThreadPoolExecutor)
PLANS = web.AppKey("plans", tuple[OrganizationPlan, ...])
UPSTREAM = web.AppKey("upstream", SharedUpstream)
# The single organization's unit, and its snapshot cache (what tests poke at).
ORGANIZATION = web.AppKey("organization", OrganizationUnit)
CACHE = web.AppKey("cache", SnapshotCache)

SCRAPE_TIMEOUT_HEADER = "X-Prometheus-Scrape-Timeout-Seconds"
SINGLE_ORGANIZATION = "default"  # the name of the one unit without --config.file


def create_app(
    settings: Settings, *, clocks: Clocks | None = None, web_config: WebConfig | None = None
) -> web.Application:
    """The one app factory; the upstream session opens and closes with the app.

    ``web_config`` is ``--web.config.file`` already loaded (the command line loads it
    first to refuse a bad one); without it the file named in ``settings`` is loaded.
    """
    if web_config is None:
        web_config = load_web_config(
            settings.web_config_file,
            allow_insecure_basic_auth=settings.web_allow_insecure_basic_auth,
        )
    app = web.Application()
    protect(app, web_config)
    app[SETTINGS] = settings
    app[CLOCKS] = clocks or Clocks()
    app[PLANS] = (plan_organization(SINGLE_ORGANIZATION, settings),)
    app.cleanup_ctx.append(_render_thread_context)
    app.cleanup_ctx.append(_upstream_context)
    app.router.add_get("/", landing)
    app.router.add_get(settings.web_telemetry_path, metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    return app


async def _render_thread_context(app: web.Application) -> AsyncIterator[None]:
    # Scrapes render on one thread of their own. Renders hold the GIL anyway, and on the
    # default executor's threads each would keep its own malloc arena as large as a
    # render's working set: up to six of them (measured: +7 MB each at 20,000 keys).
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="metrics-render") as thread:
        app[RENDER_THREAD] = thread
        yield


async def _upstream_context(app: web.Application) -> AsyncIterator[None]:
    plans = app[PLANS]
    bound = sum(organization_bound(plan.collectors) for plan in plans)
    async with open_shared_upstream(bound) as upstream:
        app[UPSTREAM] = upstream
        (plan,) = plans
        async with open_organization(plan, upstream=upstream, clocks=app[CLOCKS]) as unit:
            app[ORGANIZATION] = unit
            app[CACHE] = unit.cache
            if app[SETTINGS].demo:
                log.info("demo mode: serving a simulated organization from %s", unit.base_url)
            unit.cache.start_refresh()  # so the first scrape normally finds data
            yield


def scrape_budget(request: web.Request, settings: Settings) -> float:
    """Seconds this scrape may wait for a refresh: Prometheus' timeout less a margin."""
    timeout = settings.scrape_default_timeout
    header = request.headers.get(SCRAPE_TIMEOUT_HEADER)
    if header is not None:
        try:
            value = float(header)
        except ValueError:
            value = math.nan
        if math.isfinite(value) and value > 0:
            timeout = value
    return max(0.0, timeout - settings.scrape_timeout_margin)


async def metrics(request: web.Request) -> web.StreamResponse:
    return await _serve_organization(request, request.app[ORGANIZATION])


async def _serve_organization(request: web.Request, unit: OrganizationUnit) -> web.StreamResponse:
    """One organization's metrics: its collectors' families, then its health."""
    app = request.app
    snapshot = await unit.cache.get(scrape_budget(request, app[SETTINGS]))
    # choose_encoder negotiates the format; the renderer writes the collectors' families
    # for it, and prometheus_client the exporter's own metrics (and OpenMetrics' # EOF).
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    use_gzip = "gzip" in request.headers.get("Accept-Encoding", "").lower()
    # Rendering a large organization takes a while: keep the event loop free for probes.
    pieces = await asyncio.get_running_loop().run_in_executor(
        app[RENDER_THREAD],
        _render,
        unit.renderer,
        snapshot,
        app[CLOCKS].wall(),
        encoder,
        unit.health,
        use_gzip,
        content_type.startswith("application/openmetrics-text"),
    )
    response = web.StreamResponse(
        headers={"Content-Type": content_type, "Vary": "Accept, Accept-Encoding"}
    )
    if use_gzip:
        response.headers["Content-Encoding"] = "gzip"
    response.content_length = sum(len(piece) for piece in pieces)
    await response.prepare(request)
    if request.method != "HEAD":
        # In slices: the socket's buffer never holds a copy of a whole large body.
        for piece in pieces:
            view = memoryview(piece)
            for start in range(0, len(view), _WRITE_SLICE):
                await response.write(view[start : start + _WRITE_SLICE])
    await response.write_eof()
    return response


_WRITE_SLICE = 1 << 20


def _render(
    renderer: SnapshotRenderer,
    snapshot: Snapshot,
    now: float,
    encoder: Callable[[Collector], bytes],
    health: Collector,
    use_gzip: bool,
    openmetrics: bool,
) -> tuple[bytes, ...]:
    # The exporter's own metrics are few: prometheus_client renders them at every scrape.
    return renderer.render(
        snapshot, now=now, tail=encoder(health), gzip=use_gzip, openmetrics=openmetrics
    )


async def landing(request: web.Request) -> web.Response:
    app = request.app
    unit = app[ORGANIZATION]
    snapshot = unit.cache.current()
    health = unit.health
    now = app[CLOCKS].wall()
    collectors = []
    refreshing = {cache.name for cache in unit.cache.caches if cache.refreshing}
    for collector in unit.collectors:
        state = snapshot.get(collector.name)
        report = health.last_reports.get(collector.name)
        summary = None if state is None else collector.summary(state.rows)
        if state is not None and not state.complete:
            summary = f"{summary} (part from an earlier refresh)"
        result: str | None = None if report is None else report.result
        if collector.name in refreshing:
            result = f"{result or 'first one'}, refreshing now"
        collectors.append(
            CollectorStatus(
                name=collector.name,
                age=None if state is None else now - state.taken_at,
                summary=summary,
                last_result=result,
                last_error=report.failures[0].text if report and report.failures else None,
            )
        )
    status = LandingStatus(
        telemetry_path=app[SETTINGS].web_telemetry_path,
        collectors=tuple(collectors),
        demo=app[SETTINGS].demo,
    )
    return web.Response(text=render_landing(status), content_type="text/html")


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok\n")


async def readyz(request: web.Request) -> web.Response:
    if not request.app[CACHE].ready:
        return web.Response(status=503, text="no snapshot yet\n")
    return web.Response(text="ready\n")
