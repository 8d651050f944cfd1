"""A protected /metrics: --web.config.file with TLS, mutual TLS and basic auth, for real.

Real TLS clients against a real listening socket, certificates from trustme.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import bcrypt
import pytest
from aiohttp import web

from exporter import webconfig
from exporter.web.app import create_app
from exporter.webconfig import WebConfig, load_web_config, protect
from tests.hostile.cases import CANARY, CANARY_MARK
from tests.hostile.pki import (
    OTHER_HASH,
    PROMETHEUS_HASH,
    PROMETHEUS_PASSWORD,
    Pki,
    serving,
    tls_section,
    write_web_config,
)
from tests.support import Simulation, exporter_settings


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return Pki.create(tmp_path)


@pytest.fixture
async def exporter_at(simulation: Simulation) -> Any:
    """Serves a real exporter app with a web config; yields (base URL, web config)."""
    simulation.org.add_project("web")

    def start(path: Path, **overrides: Any) -> Any:
        settings = exporter_settings(simulation.base_url, web_config_file=path, **overrides)
        config = load_web_config(
            path, allow_insecure_basic_auth=settings.web_allow_insecure_basic_auth
        )
        return serving(create_app(settings, web_config=config), config.ssl_context)

    return start


async def get(
    url: str, *, ssl_context: ssl.SSLContext | bool = True, **headers: str
) -> tuple[int, dict[str, str], str]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(url, ssl=ssl_context, headers=headers) as response,
    ):
        return response.status, dict(response.headers), await response.text()


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


# -- TLS -----------------------------------------------------------------------------


async def test_tls_serves_metrics_to_a_client_that_trusts_the_server(
    pki: Pki, exporter_at: Any
) -> None:
    path = write_web_config(pki.directory, {"tls_server_config": tls_section()})
    async with exporter_at(path) as url:
        assert url.startswith("https://")
        status, _, body = await get(url + "/metrics", ssl_context=pki.client_context())
        assert status == 200
        assert "openai_up" in body
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            await get(url + "/metrics", ssl_context=pki.untrusting_client())
        with pytest.raises(aiohttp.ClientError):
            await get(url.replace("https://", "http://") + "/metrics")


async def test_min_version_tls13_refuses_a_tls12_client(pki: Pki, exporter_at: Any) -> None:
    path = write_web_config(pki.directory, {"tls_server_config": tls_section(min_version="TLS13")})
    async with exporter_at(path) as url:
        old = pki.client_context(maximum_version=ssl.TLSVersion.TLSv1_2)
        with pytest.raises(aiohttp.ClientConnectorError):
            await get(url + "/healthz", ssl_context=old)
        status, _, _ = await get(url + "/healthz", ssl_context=pki.client_context())
        assert status == 200


async def test_mutual_tls_accepts_a_client_of_the_ca_and_refuses_others(
    pki: Pki, exporter_at: Any
) -> None:
    tls = tls_section(client_auth_type="RequireAndVerifyClientCert", client_ca_file="client-ca.crt")
    path = write_web_config(pki.directory, {"tls_server_config": tls})
    async with exporter_at(path) as url:
        trusted = pki.client_context(identity="prometheus.example.com")
        status, _, body = await get(url + "/metrics", ssl_context=trusted)
        assert status == 200
        assert "openai_up" in body
        for refused in (
            pki.client_context(),  # no certificate
            pki.client_context(identity="prometheus.example.com", issuer=pki.stranger_ca),
        ):
            with pytest.raises(aiohttp.ClientError):
                await get(url + "/metrics", ssl_context=refused)
        # The server survives refused handshakes.
        assert (await get(url + "/healthz", ssl_context=trusted))[0] == 200


async def test_verify_client_cert_if_given(pki: Pki, exporter_at: Any) -> None:
    tls = tls_section(client_auth_type="VerifyClientCertIfGiven", client_ca_file="client-ca.crt")
    path = write_web_config(pki.directory, {"tls_server_config": tls})
    async with exporter_at(path) as url:
        assert (await get(url + "/metrics", ssl_context=pki.client_context()))[0] == 200
        good = pki.client_context(identity="prometheus.example.com")
        assert (await get(url + "/metrics", ssl_context=good))[0] == 200
        forged = pki.client_context(identity="prometheus.example.com", issuer=pki.stranger_ca)
        with pytest.raises(aiohttp.ClientError):
            await get(url + "/metrics", ssl_context=forged)


async def test_client_allowed_sans(pki: Pki, exporter_at: Any) -> None:
    tls = tls_section(
        client_auth_type="RequireAndVerifyClientCert",
        client_ca_file="client-ca.crt",
        client_allowed_sans=["prometheus.example.com"],
    )
    path = write_web_config(pki.directory, {"tls_server_config": tls})
    async with exporter_at(path) as url:
        allowed = pki.client_context(identity="prometheus.example.com")
        assert (await get(url + "/metrics", ssl_context=allowed))[0] == 200
        other = pki.client_context(identity="grafana.example.com")
        status, _, body = await get(url + "/metrics", ssl_context=other)
        assert status == 403
        assert "openai_up" not in body


async def test_inline_certificate_and_key(pki: Pki, exporter_at: Any) -> None:
    tls = {
        "cert": (pki.directory / "server.crt").read_text(),
        "key": (pki.directory / "server.key").read_text(),
    }
    path = write_web_config(pki.directory, {"tls_server_config": tls})
    async with exporter_at(path) as url:
        assert (await get(url + "/metrics", ssl_context=pki.client_context()))[0] == 200


# -- basic auth ----------------------------------------------------------------------


@pytest.fixture
async def protected(pki: Pki, exporter_at: Any) -> AsyncIterator[tuple[str, ssl.SSLContext]]:
    document = {
        "tls_server_config": tls_section(),
        "basic_auth_users": {"prometheus": PROMETHEUS_HASH, "other": OTHER_HASH},
    }
    async with exporter_at(write_web_config(pki.directory, document)) as url:
        yield url, pki.client_context()


async def test_basic_auth_lets_the_right_user_in(protected: tuple[str, ssl.SSLContext]) -> None:
    url, client = protected
    auth = basic("prometheus", PROMETHEUS_PASSWORD)
    for path in ("/metrics", "/"):
        status, _, _ = await get(url + path, ssl_context=client, Authorization=auth)
        assert status == 200, path
    assert "openai_up" in (await get(url + "/metrics", ssl_context=client, Authorization=auth))[2]


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        basic("prometheus", "wrong"),
        basic("prometheus", PROMETHEUS_PASSWORD + "x"),
        basic("nobody", PROMETHEUS_PASSWORD),
        basic("other", PROMETHEUS_PASSWORD),  # right password, wrong user
        basic("prometheus", "x" * 500),  # beyond bcrypt's 72 bytes
        basic("prometheus", "nul\x00byte"),
        basic("", ""),
        "Basic !!!not-base64!!!",
        "Basic " + base64.b64encode(b"no-colon").decode(),
        "Basic " + base64.b64encode(b"\xff\xfe:\xff").decode(),  # not UTF-8
        "Bearer " + CANARY,
        "Basic",
        "basic " + base64.b64encode(b"prometheus:wrong").decode(),
    ],
)
@pytest.mark.parametrize("path", ["/metrics", "/", "/nope"])
async def test_basic_auth_refuses_with_401_and_a_challenge(
    authorization: str | None, path: str, protected: tuple[str, ssl.SSLContext]
) -> None:
    url, client = protected
    headers = {} if authorization is None else {"Authorization": authorization}
    status, response_headers, body = await get(url + path, ssl_context=client, **headers)
    assert status == 401
    assert (
        response_headers["WWW-Authenticate"] == 'Basic realm="openai-key-exporter", charset="UTF-8"'
    )
    assert "openai_" not in body
    assert CANARY_MARK not in body + str(response_headers)


async def test_probes_need_no_credentials(protected: tuple[str, ssl.SSLContext]) -> None:
    url, client = protected
    assert (await get(url + "/healthz", ssl_context=client))[0] == 200
    assert (await get(url + "/readyz", ssl_context=client))[0] in (200, 503)


async def test_a_verified_password_is_not_hashed_again(
    protected: tuple[str, ssl.SSLContext], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, client = protected
    calls: list[bytes] = []
    real = bcrypt.checkpw

    def counting(password: bytes, hashed: bytes) -> bool:
        calls.append(password)
        return real(password, hashed)

    monkeypatch.setattr(bcrypt, "checkpw", counting)
    good = basic("prometheus", PROMETHEUS_PASSWORD)
    for _ in range(5):
        assert (await get(url + "/metrics", ssl_context=client, Authorization=good))[0] == 200
    assert len(calls) == 1, "one bcrypt for five scrapes"
    bad = basic("prometheus", "guess")
    for _ in range(3):
        assert (await get(url + "/metrics", ssl_context=client, Authorization=bad))[0] == 401
    assert len(calls) == 4, "a failure is never remembered: every guess pays bcrypt"
    for _ in range(2):
        stranger = basic("nobody", "guess")
        assert (await get(url + "/metrics", ssl_context=client, Authorization=stranger))[0] == 401
    assert len(calls) == 6, "an unknown user pays bcrypt too, so timing tells nothing"
    # The remembered success is bound to user and password together.
    swapped = basic("other", PROMETHEUS_PASSWORD)
    assert (await get(url + "/metrics", ssl_context=client, Authorization=swapped))[0] == 401


async def test_too_many_pending_checks_get_429_not_a_pile_up() -> None:
    """bcrypt is slow on purpose; a flood of guesses must not queue without bound."""
    gate = threading.Event()

    def held(password: bytes, hashed: bytes) -> bool:
        gate.wait(timeout=30)
        return False

    guard = webconfig.BasicAuthGuard({"prometheus": PROMETHEUS_HASH.encode()}, checkpw=held)
    try:
        checks = [
            asyncio.create_task(guard.check(basic("prometheus", f"guess-{n}")))
            for n in range(webconfig.MAX_PENDING_VERIFICATIONS + 5)
        ]
        await asyncio.sleep(0)
        turned_away = [task for task in checks if task.done()]
        assert len(turned_away) == 5
        assert all(task.result() is None for task in turned_away)
        gate.set()
        assert set(await asyncio.gather(*checks)) == {None, False}
        assert await guard.check(basic("prometheus", "again")) is False, "room again"
    finally:
        gate.set()
        guard.close()


async def test_basic_auth_over_plain_http_only_when_explicitly_allowed(
    pki: Pki, exporter_at: Any
) -> None:
    path = write_web_config(pki.directory, {"basic_auth_users": {"prometheus": PROMETHEUS_HASH}})
    with pytest.raises(webconfig.WebConfigError, match="clear text"):
        load_web_config(path)
    async with exporter_at(path, web_allow_insecure_basic_auth=True) as url:
        assert url.startswith("http://")
        assert (await get(url + "/metrics"))[0] == 401
        auth = basic("prometheus", PROMETHEUS_PASSWORD)
        assert (await get(url + "/metrics", Authorization=auth))[0] == 200


# -- headers and rate limit, on a bare app -------------------------------------------


async def _hello(request: web.Request) -> web.Response:
    return web.Response(text="hello")


def bare_app(config: WebConfig, timer: Any = None) -> web.Application:
    app = web.Application()
    if timer is None:
        protect(app, config)
    else:
        protect(app, config, timer=timer)
    for path in ("/", "/healthz", "/metrics"):
        app.router.add_get(path, _hello)
    return app


async def test_configured_headers_on_every_response(pki: Pki, exporter_at: Any) -> None:
    headers = {
        "Strict-Transport-Security": "max-age=31536000",
        "X-Frame-Options": "deny",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'",
    }
    document = {"tls_server_config": tls_section(), "http_server_config": {"headers": headers}}
    async with exporter_at(write_web_config(pki.directory, document)) as url:
        for path, expected in (("/metrics", 200), ("/", 200), ("/healthz", 200), ("/nope", 404)):
            status, got, _ = await get(url + path, ssl_context=pki.client_context())
            assert status == expected
            for name, value in headers.items():
                assert got[name] == value, (path, name)


async def test_rate_limit_answers_429_beyond_the_burst_and_spares_probes(pki: Pki) -> None:
    document = {"tls_server_config": tls_section(), "rate_limit": {"interval": "1s", "burst": 2}}
    config = load_web_config(write_web_config(pki.directory, document))
    now = [100.0]
    async with serving(bare_app(config, timer=lambda: now[0]), config.ssl_context) as url:
        client = pki.client_context()
        statuses = [(await get(url + "/metrics", ssl_context=client))[0] for _ in range(4)]
        assert statuses == [200, 200, 429, 429]
        assert (await get(url + "/healthz", ssl_context=client))[0] == 200
        now[0] += 1.0  # one interval: one more request
        statuses = [(await get(url + "/metrics", ssl_context=client))[0] for _ in range(2)]
        assert statuses == [200, 429]


async def test_cipher_suites_by_their_go_names(pki: Pki, exporter_at: Any) -> None:
    tls = tls_section(
        max_version="TLS12",
        cipher_suites=["TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"],  # trustme keys are ECDSA
    )
    path = write_web_config(pki.directory, {"tls_server_config": tls})
    async with exporter_at(path) as url:
        host, port = url.removeprefix("https://").rsplit(":", 1)
        _, writer = await asyncio.open_connection(host, int(port), ssl=pki.client_context())
        cipher = writer.get_extra_info("cipher")
        writer.close()
        assert cipher[0] == "ECDHE-ECDSA-AES256-GCM-SHA384"
        assert cipher[1] == "TLSv1.2"


async def test_inline_client_ca(pki: Pki, exporter_at: Any) -> None:
    tls = tls_section(
        client_auth_type="RequireAndVerifyClientCert",
        client_ca=(pki.directory / "client-ca.crt").read_text(),
    )
    path = write_web_config(pki.directory, {"tls_server_config": tls})
    async with exporter_at(path) as url:
        trusted = pki.client_context(identity="prometheus.example.com")
        assert (await get(url + "/metrics", ssl_context=trusted))[0] == 200
        with pytest.raises(aiohttp.ClientError):
            await get(url + "/metrics", ssl_context=pki.client_context())
