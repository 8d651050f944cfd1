"""The aiohttp application: ``/``, the metrics path, ``/probe``, ``/healthz``, ``/readyz``.

Without ``--config.file`` one organization is served at the metrics path, as always.
With it, each configured organization is its own scrape target at
``/probe?target=<name>`` (the multi-target pattern), and the metrics path serves the
exporter's own metrics only.
"""

from __future__ import annotations

import asyncio
import gzip
import logging
import math
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack

from aiohttp import web
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from exporter.cache import SnapshotCache
from exporter.clock import Clocks
from exporter.config import Settings
from exporter.health import OrganizationsHealth
from exporter.organizations import OrganizationsFile, load_organizations
from exporter.upstream.shared import SharedUpstream, open_shared_upstream
from exporter.web.landing import LandingStatus, render_landing
from exporter.web.status import collector_statuses, organization_status
from exporter.web.targets import TargetError, probe_target
from exporter.web.units import (
    OrganizationPlan,
    OrganizationUnit,
    configured_plans,
    open_organization,
    shared_bound,
    single_plan,
)
from exporter.webconfig import WebConfig, load_web_config, protect

log = logging.getLogger(__name__)

SETTINGS = web.AppKey("settings", Settings)
CLOCKS = web.AppKey("clocks", Clocks)
RENDER_THREAD = web.AppKey("render_thread", ThreadPoolExecutor)
PLANS = web.AppKey("plans", tuple[OrganizationPlan, ...])
UPSTREAM = web.AppKey("upstream", SharedUpstream)
# With --config.file: every organization's unit by target name, and /metrics' content.
ORGANIZATIONS = web.AppKey("organizations", dict[str, OrganizationUnit])
OWN_METRICS = web.AppKey("own_metrics", OrganizationsHealth)
# Without it: the one organization's unit, and its snapshot cache.
ORGANIZATION = web.AppKey("organization", OrganizationUnit)
CACHE = web.AppKey("cache", SnapshotCache)

SCRAPE_TIMEOUT_HEADER = "X-Prometheus-Scrape-Timeout-Seconds"
PROBE_PATH = "/probe"


def create_app(
    settings: Settings,
    *,
    clocks: Clocks | None = None,
    web_config: WebConfig | None = None,
    organizations: OrganizationsFile | None = None,
) -> web.Application:
    """The one app factory; the upstream session opens and closes with the app.

    ``web_config`` is ``--web.config.file`` and ``organizations`` the ``--config.file``,
    already loaded (the command line loads them first to refuse a bad one); without
    them the files named in ``settings`` are loaded.
    """
    if web_config is None:
        web_config = load_web_config(
            settings.web_config_file,
            allow_insecure_basic_auth=settings.web_allow_insecure_basic_auth,
        )
    if organizations is None and settings.config_file is not None:
        organizations = load_organizations(settings.config_file, demo=settings.demo)
    app = web.Application()
    protect(app, web_config)
    app[SETTINGS] = settings
    app[CLOCKS] = clocks or Clocks()
    app[PLANS] = (
        (single_plan(settings),)
        if organizations is None
        else configured_plans(settings, organizations)
    )
    app.cleanup_ctx.append(_render_thread_context)
    app.cleanup_ctx.append(_upstream_context)
    app.router.add_get("/", landing)
    app.router.add_get(settings.web_telemetry_path, metrics)
    app.router.add_get(PROBE_PATH, probe)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    return app


def _several(app: web.Application) -> bool:
    """Whether --config.file names the organizations (else: the one of the settings)."""
    return app[PLANS][0].name is not None


async def _render_thread_context(app: web.Application) -> AsyncIterator[None]:
    # Scrapes render on one thread of their own. Renders hold the GIL anyway, and on the
    # default executor's threads each would keep its own malloc arena as large as a
    # render's working set: up to six of them (measured: +7 MB each at 20,000 keys).
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="metrics-render") as thread:
        app[RENDER_THREAD] = thread
        yield


async def _upstream_context(app: web.Application) -> AsyncIterator[None]:
    plans = app[PLANS]
    async with (
        open_shared_upstream(shared_bound(plans)) as upstream,
        AsyncExitStack() as stack,
    ):
        app[UPSTREAM] = upstream
        units = [
            await stack.enter_async_context(
                open_organization(plan, upstream=upstream, clocks=app[CLOCKS])
            )
            for plan in plans
        ]
        if _several(app):
            named = {unit.name: unit for unit in units if unit.name is not None}
            app[ORGANIZATIONS] = named
            app[OWN_METRICS] = OrganizationsHealth(
                {name: unit.health for name, unit in named.items()}
            )
            log.info(
                "serving %d organizations at %s?target=<name>: %s (at most %d upstream "
                "requests in flight)",
                len(named),
                PROBE_PATH,
                ", ".join(named),
                upstream.bound,
            )
        else:
            (app[ORGANIZATION],) = units
            app[CACHE] = units[0].cache
        if app[SETTINGS].demo:
            for unit in units:
                which = "" if unit.name is None else f" ({unit.name})"
                log.info(
                    "demo mode: serving a simulated organization%s from %s", which, unit.base_url
                )
        for unit in units:
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
    app = request.app
    if _several(app):
        own = app[OWN_METRICS]
        return await _serve(request, lambda encoder, use_gzip, _: _own(encoder(own), use_gzip))
    return await _serve_organization(request, app[ORGANIZATION])


async def probe(request: web.Request) -> web.StreamResponse:
    app = request.app
    if not _several(app):
        return _refused(
            "no --config.file: this exporter serves its one organization at "
            f"{app[SETTINGS].web_telemetry_path}"
        )
    units = app[ORGANIZATIONS]
    try:
        target = probe_target(request.query, units)
    except TargetError as error:
        return _refused(str(error))
    return await _serve_organization(request, units[target])


def _refused(reason: str) -> web.Response:
    return web.Response(status=400, text=reason + "\n")


async def _serve_organization(request: web.Request, unit: OrganizationUnit) -> web.StreamResponse:
    """One organization's metrics: its collectors' families, then its health, after
    waiting for its refreshes at most the scrape's budget."""
    app = request.app
    snapshot = await unit.cache.get(scrape_budget(request, app[SETTINGS]))
    now = app[CLOCKS].wall()

    def render(encoder: Encoder, use_gzip: bool, openmetrics: bool) -> tuple[bytes, ...]:
        # The exporter's own metrics are few: prometheus_client renders them each time.
        return unit.renderer.render(
            snapshot, now=now, tail=encoder(unit.health), gzip=use_gzip, openmetrics=openmetrics
        )

    return await _serve(request, render)


Encoder = Callable[[Collector], bytes]
# (encoder, gzip, openmetrics) -> the body's pieces, written in order
Render = Callable[[Encoder, bool, bool], tuple[bytes, ...]]


def _own(text: bytes, use_gzip: bool) -> tuple[bytes, ...]:
    return (gzip.compress(text, compresslevel=6),) if use_gzip else (text,)


async def _serve(request: web.Request, render: Render) -> web.StreamResponse:
    # choose_encoder negotiates the format; the renderer writes the collectors' families
    # for it, and prometheus_client the exporter's own metrics (and OpenMetrics' # EOF).
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    use_gzip = "gzip" in request.headers.get("Accept-Encoding", "").lower()
    # Rendering a large organization takes a while: keep the event loop free for probes.
    pieces = await asyncio.get_running_loop().run_in_executor(
        request.app[RENDER_THREAD],
        render,
        encoder,
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


async def landing(request: web.Request) -> web.Response:
    app = request.app
    now = app[CLOCKS].wall()
    settings = app[SETTINGS]
    if _several(app):
        status = LandingStatus(
            telemetry_path=settings.web_telemetry_path,
            collectors=(),
            demo=settings.demo,
            organizations=tuple(
                organization_status(unit, now, PROBE_PATH) for unit in app[ORGANIZATIONS].values()
            ),
        )
    else:
        status = LandingStatus(
            telemetry_path=settings.web_telemetry_path,
            collectors=collector_statuses(app[ORGANIZATION], now),
            demo=settings.demo,
        )
    return web.Response(text=render_landing(status), content_type="text/html")


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok\n")


async def readyz(request: web.Request) -> web.Response:
    app = request.app
    if _several(app):
        # Every organization has tried once and one has data: an organization whose key
        # is revoked does not take the others out of service.
        caches = [unit.cache for unit in app[ORGANIZATIONS].values()]
        if not (all(cache.tried for cache in caches) and any(cache.ready for cache in caches)):
            return web.Response(status=503, text="not every organization has tried once yet\n")
        return web.Response(text="ready\n")
    if not app[CACHE].ready:
        return web.Response(status=503, text="no snapshot yet\n")
    return web.Response(text="ready\n")
