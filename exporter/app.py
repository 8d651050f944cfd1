"""The aiohttp application: ``/``, the metrics path, ``/healthz`` and ``/readyz``."""

from __future__ import annotations

import asyncio
import gzip
import logging
import math
from collections.abc import AsyncIterator, Callable, Iterable

from aiohttp import web
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from exporter.cache import InventoryCache
from exporter.collector import InventoryCollector
from exporter.config import Settings
from exporter.health import ExporterHealth
from exporter.landing import LandingStatus, render_landing
from exporter.upstream import Clocks, open_upstream

log = logging.getLogger(__name__)

SETTINGS = web.AppKey("settings", Settings)
HEALTH = web.AppKey("health", ExporterHealth)
CLOCKS = web.AppKey("clocks", Clocks)
CACHE = web.AppKey("cache", InventoryCache)
BASE_URL = web.AppKey("base_url", str)

SCRAPE_TIMEOUT_HEADER = "X-Prometheus-Scrape-Timeout-Seconds"


def create_app(settings: Settings, *, clocks: Clocks | None = None) -> web.Application:
    """The one app factory; the upstream session opens and closes with the app."""
    app = web.Application()
    app[SETTINGS] = settings
    app[HEALTH] = ExporterHealth()
    app[CLOCKS] = clocks or Clocks()
    app.cleanup_ctx.append(_upstream_context)
    app.router.add_get("/", landing)
    app.router.add_get(settings.web_telemetry_path, metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    return app


async def _upstream_context(app: web.Application) -> AsyncIterator[None]:
    async with open_upstream(app[SETTINGS], app[HEALTH], app[CLOCKS]) as (cache, base_url):
        app[CACHE] = cache
        app[BASE_URL] = base_url
        if app[SETTINGS].demo:
            log.info("demo mode: serving a simulated organization from %s", base_url)
        cache.start_refresh()  # so the first scrape normally finds data
        yield


class _ScrapeView:
    """What one scrape exposes: the snapshot's families, then the exporter's own."""

    def __init__(self, *collectors: Collector) -> None:
        self._collectors = collectors

    def collect(self) -> Iterable[Metric]:
        for collector in self._collectors:
            yield from collector.collect()


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


async def metrics(request: web.Request) -> web.Response:
    app = request.app
    settings = app[SETTINGS]
    inventory = await app[CACHE].get(scrape_budget(request, settings))
    view = _ScrapeView(
        InventoryCollector(
            inventory,
            now=app[CLOCKS].wall(),
            ttl=settings.cache_ttl,
            owner_email=settings.metrics_owner_email,
        ),
        app[HEALTH],
    )
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    use_gzip = "gzip" in request.headers.get("Accept-Encoding", "").lower()
    # Rendering a large organization takes a while: keep the event loop free for probes.
    body = await asyncio.get_running_loop().run_in_executor(None, _render, encoder, view, use_gzip)
    response = web.Response(
        body=body, headers={"Content-Type": content_type, "Vary": "Accept, Accept-Encoding"}
    )
    if use_gzip:
        response.headers["Content-Encoding"] = "gzip"
    return response


def _render(encoder: Callable[[Collector], bytes], view: Collector, use_gzip: bool) -> bytes:
    text = encoder(view)
    return gzip.compress(text, compresslevel=6) if use_gzip else text


async def landing(request: web.Request) -> web.Response:
    app = request.app
    inventory = app[CACHE].last_good
    report = app[HEALTH].last_report
    status = LandingStatus(
        telemetry_path=app[SETTINGS].web_telemetry_path,
        snapshot_age=None if inventory is None else app[CLOCKS].wall() - inventory.taken_at,
        projects=0 if inventory is None else len(inventory.projects),
        keys=0 if inventory is None else inventory.key_count,
        last_result=None if report is None else report.result,
        last_error=str(report.errors[0]) if report is not None and report.errors else None,
        demo=app[SETTINGS].demo,
    )
    return web.Response(text=render_landing(status), content_type="text/html")


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok\n")


async def readyz(request: web.Request) -> web.Response:
    if request.app[CACHE].last_good is None:
        return web.Response(status=503, text="no snapshot yet\n")
    return web.Response(text="ready\n")
