"""The guards a ``WebConfig`` puts on an aiohttp app: security headers, rate limit,
allowed client certificate SANs, basic auth and the certificate watcher.

/healthz and /readyz pass without credentials and outside the rate limit, so that
probes keep working.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from exporter.webconfig.basic_auth import BasicAuthGuard
from exporter.webconfig.model import WebConfig
from exporter.webconfig.reload import watch_certificates

PROBE_PATHS = frozenset({"/healthz", "/readyz"})
REALM = "openai-key-exporter"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class _TokenBucket:
    def __init__(self, interval: float, burst: int, timer: Callable[[], float]) -> None:
        self._interval = interval
        self._burst = burst
        self._timer = timer
        self._tokens = float(burst)
        self._last = timer()

    def take(self) -> bool:
        now = self._timer()
        self._tokens = min(self._burst, self._tokens + (now - self._last) / self._interval)
        self._last = now
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False


def _unauthorized() -> web.HTTPUnauthorized:
    return web.HTTPUnauthorized(
        text="401 Unauthorized\n",
        headers={"WWW-Authenticate": f'Basic realm="{REALM}", charset="UTF-8"'},
    )


def _peer_sans(request: web.Request) -> set[str]:
    transport = request.transport
    certificate = transport.get_extra_info("peercert") if transport is not None else None
    if not certificate:
        return set()
    return {str(value) for _, value in certificate.get("subjectAltName", ())}


def protect(
    app: web.Application,
    config: WebConfig,
    *,
    timer: Callable[[], float] = time.monotonic,
    cert_check_interval: float | None = None,
) -> None:
    """Adds the guards ``config`` asks for to ``app`` (before it starts); none for an
    empty config. Probes (/healthz, /readyz) pass without credentials or rate limit.
    Certificate files are checked for a renewal every ``cert_check_interval`` seconds
    (``reload.CERT_CHECK_INTERVAL`` unless given) while the app runs."""
    if config.reloader is not None:
        watch_certificates(app, config.reloader, cert_check_interval)
    if config.headers:
        headers = dict(config.headers)

        # A signal, not a middleware: /metrics streams, and its headers leave with its
        # first bytes, before a middleware would see the response.
        async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
            response.headers.update(headers)

        app.on_response_prepare.append(security_headers)
    if config.rate_interval > 0 and config.rate_burst > 0:
        bucket = _TokenBucket(config.rate_interval, config.rate_burst, timer)

        @web.middleware
        async def rate_limit(request: web.Request, handler: Handler) -> web.StreamResponse:
            if request.path not in PROBE_PATHS and not bucket.take():
                raise web.HTTPTooManyRequests(text="429 Too Many Requests\n")
            return await handler(request)

        app.middlewares.append(rate_limit)
    if config.allowed_sans:
        allowed = config.allowed_sans

        @web.middleware
        async def client_sans(request: web.Request, handler: Handler) -> web.StreamResponse:
            if not _peer_sans(request) & allowed:
                raise web.HTTPForbidden(text="403 Forbidden: client certificate not allowed\n")
            return await handler(request)

        app.middlewares.append(client_sans)
    if config.users:
        guard = BasicAuthGuard(config.users)

        @web.middleware
        async def basic_auth(request: web.Request, handler: Handler) -> web.StreamResponse:
            if request.path in PROBE_PATHS:
                return await handler(request)
            verdict = await guard.check(request.headers.get("Authorization"))
            if verdict is None:
                raise web.HTTPTooManyRequests(
                    text="429 Too Many Requests\n", headers={"Retry-After": "1"}
                )
            if not verdict:
                raise _unauthorized()
            return await handler(request)

        async def close_guard(_: web.Application) -> None:
            guard.close()

        app.middlewares.append(basic_auth)
        app.on_cleanup.append(close_guard)
