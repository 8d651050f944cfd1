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
from exporter.collectors.base import AnyCollector
from exporter.config import Settings
from exporter.health import ExporterHealth
from exporter.pipeline import collector_ttl, enabled_collectors, open_pipeline
from exporter.rendering.renderer import SnapshotRenderer
from exporter.snapshot import Snapshot
from exporter.web.landing import CollectorStatus, LandingStatus, render_landing
from exporter.webconfig import WebConfig, load_web_config, protect

log = logging.getLogger(__name__)

SETTINGS = web.AppKey("settings", Settings)
HEALTH = web.AppKey("health", ExporterHealth)
CLOCKS = web.AppKey("clocks", Clocks)
COLLECTORS = web.AppKey("collectors", tuple[AnyCollector, ...])
CACHE = web.AppKey("cache", SnapshotCache)
BASE_URL = web.AppKey("base_url", str)
RENDERER = web.AppKey("renderer", SnapshotRenderer)
RENDER_THREAD = web.AppKey("render_thread", ThreadPoolExecutor)

SCRAPE_TIMEOUT_HEADER = "X-Prometheus-Scrape-Timeout-Seconds"


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
    collectors = app[COLLECTORS] = enabled_collectors(settings)
    app[HEALTH] = ExporterHealth(
        [collector.name for collector in collectors],
        [endpoint for collector in collectors for endpoint in collector.endpoints],
        outside_up=[collector.name for collector in collectors if not collector.in_up],
    )
    app[CLOCKS] = clocks or Clocks()
    # Keeps the prepared text of each collector's latest state between scrapes.
    app[RENDERER] = SnapshotRenderer(
        collectors, ttls={c.name: collector_ttl(settings, c.name) for c in collectors}
    )
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
    health = app[HEALTH]
    async with open_pipeline(
        app[SETTINGS],
        app[COLLECTORS],
        observe_request=health.observe_request,
        observe_report=health.record,
        clocks=app[CLOCKS],
    ) as (cache, base_url):
        app[CACHE] = cache
        app[BASE_URL] = base_url
        if app[SETTINGS].demo:
            log.info("demo mode: serving a simulated organization from %s", base_url)
        cache.start_refresh()  # so the first scrape normally finds data
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
    app = request.app
    settings = app[SETTINGS]
    snapshot = await app[CACHE].get(scrape_budget(request, settings))
    # choose_encoder negotiates the format; the renderer writes the collectors' families
    # for it, and prometheus_client the exporter's own metrics (and OpenMetrics' # EOF).
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    use_gzip = "gzip" in request.headers.get("Accept-Encoding", "").lower()
    # Rendering a large organization takes a while: keep the event loop free for probes.
    pieces = await asyncio.get_running_loop().run_in_executor(
        app[RENDER_THREAD],
        _render,
        app[RENDERER],
        snapshot,
        app[CLOCKS].wall(),
        encoder,
        app[HEALTH],
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
    snapshot = app[CACHE].current()
    health = app[HEALTH]
    now = app[CLOCKS].wall()
    collectors = []
    refreshing = {cache.name for cache in app[CACHE].caches if cache.refreshing}
    for collector in app[COLLECTORS]:
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
