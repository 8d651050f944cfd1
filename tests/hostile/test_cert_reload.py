"""Certificate renewal without a restart: changed certificate files reach new handshakes.

Real TLS clients on a real listening socket, certificates from trustme. Checks are
triggered by calling ``reloader.check()`` (the watcher's interval is an hour there), except
in the test of the watcher itself, which polls with a bound and never times anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import trustme
from aiohttp import web
from cryptography.hazmat.primitives import serialization

from exporter.web.app import create_app
from exporter.webconfig import CertificateReloader, WebConfig, load_web_config, protect
from exporter.webconfig import reload as cert_reload
from tests.hostile.pki import Pki, serving, tls_section, write_web_config
from tests.support import Simulation, exporter_settings

HOUR = 3600.0  # the watcher's interval where the tests trigger checks themselves
POLL_STEP = 0.02
POLL_LIMIT = 500  # bounded: at most 500 looks, ten seconds, for the watcher to act


def der(leaf: trustme.LeafCert) -> bytes:
    return ssl.PEM_cert_to_DER_cert(leaf.cert_chain_pems[0].bytes().decode())


def write_pair(directory: Path, leaf: trustme.LeafCert) -> None:
    """Rewrites server.crt and server.key in place, as a hand or a script would."""
    (directory / "server.crt").write_bytes(leaf.cert_chain_pems[0].bytes())
    (directory / "server.key").write_bytes(leaf.private_key_pem.bytes())


async def served_certificate(url: str, client: ssl.SSLContext) -> bytes:
    """The certificate a NEW connection is given (DER)."""
    host, port = url.removeprefix("https://").rsplit(":", 1)
    _, writer = await asyncio.open_connection(host, int(port), ssl=client)
    try:
        certificate: bytes = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await writer.wait_closed()
    return certificate


async def status_of(url: str, client: ssl.SSLContext) -> int:
    async with (
        aiohttp.ClientSession() as session,
        session.get(url, ssl=client) as response,
    ):
        await response.read()
        return response.status


class KeepAlive:
    """One HTTP/1.1 connection kept open across a reload."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, url: str, client: ssl.SSLContext) -> KeepAlive:
        host, port = url.removeprefix("https://").rsplit(":", 1)
        return cls(*await asyncio.open_connection(host, int(port), ssl=client))

    @property
    def certificate(self) -> bytes:
        certificate: bytes = self.writer.get_extra_info("ssl_object").getpeercert(True)
        return certificate

    async def get(self, path: str) -> int:
        self.writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        status = int((await self.reader.readline()).split()[1])
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
        await self.reader.readexactly(length)
        return status

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await self.writer.wait_closed()


class KubeletVolume:
    """A Secret volume in the kubelet's layout: ``tls.crt -> ..data/tls.crt``, ``..data ->
    ..<timestamp>``. An update writes a new timestamped directory, then renames a fresh
    ``..data`` symlink over the old one (one atomic swap for all files), then removes the
    old directory: what the kubelet's AtomicWriter does."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.generation = 0
        directory.mkdir()

    def write(self, files: dict[str, bytes]) -> None:
        self.generation += 1
        payload = self.directory / f"..2026_05_01_00_00_{self.generation:02d}.000000000"
        payload.mkdir()
        for name, data in files.items():
            (payload / name).write_bytes(data)
        data_link = self.directory / "..data"
        old = data_link.resolve() if data_link.is_symlink() else None
        staging = self.directory / "..data_tmp"
        staging.symlink_to(payload.name)
        staging.replace(data_link)  # rename(2): atomic
        for name in files:
            link = self.directory / name
            if not link.is_symlink():
                link.symlink_to(f"..data/{name}")
        if old is not None:
            shutil.rmtree(old)

    def write_pair(self, leaf: trustme.LeafCert) -> None:
        self.write(
            {"tls.crt": leaf.cert_chain_pems[0].bytes(), "tls.key": leaf.private_key_pem.bytes()}
        )


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return Pki.create(tmp_path)


@pytest.fixture
def first(pki: Pki) -> trustme.LeafCert:
    """The certificate served at start (the one Pki.create wrote)."""
    leaf: trustme.LeafCert = pki.server_ca.issue_cert("127.0.0.1", "localhost")
    write_pair(pki.directory, leaf)
    return leaf


@pytest.fixture
def renewed(pki: Pki) -> trustme.LeafCert:
    """What cert-manager would issue at renewal: same CA, new certificate, new key."""
    leaf: trustme.LeafCert = pki.server_ca.issue_cert("127.0.0.1", "localhost")
    return leaf


@pytest.fixture
def log_lines(caplog: pytest.LogCaptureFixture) -> Callable[[int], list[str]]:
    caplog.set_level(logging.INFO, logger="exporter.webconfig")

    def lines(level: int) -> list[str]:
        return [
            record.getMessage()
            for record in caplog.records
            if record.name == "exporter.webconfig" and record.levelno == level
        ]

    return lines


async def _hello(request: web.Request) -> web.Response:
    return web.Response(text="hello")


@dataclass
class Served:
    url: str
    config: WebConfig

    @property
    def reloader(self) -> CertificateReloader:
        assert self.config.reloader is not None
        return self.config.reloader


@contextlib.asynccontextmanager
async def serve(path: Path) -> AsyncIterator[Served]:
    """A bare app guarded by `protect`, served with the config's context."""
    config = load_web_config(path)
    app = web.Application()
    protect(app, config, cert_check_interval=HOUR)
    for route in ("/", "/healthz", "/metrics"):
        app.router.add_get(route, _hello)
    async with serving(app, config.ssl_context) as url:
        yield Served(url, config)


# -- renewal -------------------------------------------------------------------------


async def test_rewritten_files_reach_new_connections_while_open_ones_continue(
    pki: Pki,
    first: trustme.LeafCert,
    renewed: trustme.LeafCert,
    log_lines: Callable[[int], list[str]],
) -> None:
    client = pki.client_context()
    path = write_web_config(pki.directory, {"tls_server_config": tls_section()})
    async with serve(path) as served:
        assert await served_certificate(served.url, client) == der(first)
        assert served.reloader.check() is False, "nothing changed, nothing loaded"
        kept = await KeepAlive.open(served.url, client)
        try:
            assert await kept.get("/metrics") == 200
            write_pair(pki.directory, renewed)
            assert served.reloader.check() is True
            assert await served_certificate(served.url, client) == der(renewed)
            # The open connection goes on, on the handshake it made.
            assert await kept.get("/metrics") == 200
            assert kept.certificate == der(first)
        finally:
            await kept.close()
        assert served.reloader.check() is False, "loaded once, not at every check"
    assert [line for line in log_lines(logging.INFO) if "reloaded" in line] == [
        f"TLS certificate reloaded from {pki.directory / 'server.crt'}, "
        f"{pki.directory / 'server.key'}; new connections get it"
    ]
    assert log_lines(logging.WARNING) == []


async def test_kubernetes_secret_volume_symlink_swap(
    pki: Pki, first: trustme.LeafCert, renewed: trustme.LeafCert
) -> None:
    volume = KubeletVolume(pki.directory / "tls")
    volume.write_pair(first)
    document = {"tls_server_config": {"cert_file": "tls/tls.crt", "key_file": "tls/tls.key"}}
    path = write_web_config(pki.directory, document)
    client = pki.client_context()
    async with serve(path) as served:
        assert await served_certificate(served.url, client) == der(first)
        volume.write_pair(renewed)  # the file names stay; their target changes
        assert served.reloader.check() is True
        assert await served_certificate(served.url, client) == der(renewed)
        assert served.reloader.check() is False
        third = pki.server_ca.issue_cert("127.0.0.1", "localhost")
        volume.write_pair(third)
        assert served.reloader.check() is True, "every renewal, not only the first"
        assert await served_certificate(served.url, client) == der(third)


async def test_a_key_of_another_type_replaces_the_old_certificate_entirely(
    pki: Pki, first: trustme.LeafCert
) -> None:
    """ECDSA to RSA: loading into the served context would keep the ECDSA certificate in
    its own slot, still chosen for clients that take ECDSA (most do). Both clients trust
    the issuing CA, so a refusal can only mean there is no ECDSA certificate left."""
    rsa = pki.server_ca.issue_cert("127.0.0.1", "localhost", key_type=trustme.KeyType.RSA)
    client = pki.client_context()  # TLS 1.3, takes either; OpenSSL would pick ECDSA
    ecdsa_only = pki.client_context(maximum_version=ssl.TLSVersion.TLSv1_2)
    ecdsa_only.set_ciphers("ECDHE-ECDSA-AES128-GCM-SHA256")
    path = write_web_config(pki.directory, {"tls_server_config": tls_section()})
    async with serve(path) as served:
        assert await served_certificate(served.url, ecdsa_only) == der(first)
        write_pair(pki.directory, rsa)
        assert served.reloader.check() is True
        assert await served_certificate(served.url, client) == der(rsa)
        # The server's alert reaches asyncio as an SSL error or as a reset connection.
        with pytest.raises((ssl.SSLError, ConnectionResetError)):
            await served_certificate(served.url, ecdsa_only)


# -- a broken replacement ------------------------------------------------------------


def _truncated(directory: Path, old: trustme.LeafCert, new: trustme.LeafCert) -> None:
    text = new.cert_chain_pems[0].bytes()
    (directory / "server.crt").write_bytes(text[: len(text) // 2])  # caught mid-write
    (directory / "server.key").write_bytes(new.private_key_pem.bytes())


def _mismatched(directory: Path, old: trustme.LeafCert, new: trustme.LeafCert) -> None:
    (directory / "server.crt").write_bytes(new.cert_chain_pems[0].bytes())  # key not yet


def _gone(directory: Path, old: trustme.LeafCert, new: trustme.LeafCert) -> None:
    (directory / "server.key").unlink()


def _not_pem(directory: Path, old: trustme.LeafCert, new: trustme.LeafCert) -> None:
    (directory / "server.crt").write_bytes(b"\x00\x01 not a certificate\n")


def _encrypted_key(directory: Path, old: trustme.LeafCert, new: trustme.LeafCert) -> None:
    key = serialization.load_pem_private_key(new.private_key_pem.bytes(), password=None)
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"passphrase-never-logged"),
    )
    (directory / "server.crt").write_bytes(new.cert_chain_pems[0].bytes())
    (directory / "server.key").write_bytes(encrypted)


@pytest.mark.parametrize(
    ("breakage", "reason"),
    [
        (_truncated, "cannot load the certificate and key"),
        (_mismatched, "KEY_VALUES_MISMATCH"),
        (_gone, "no such file"),
        (_not_pem, "cannot load the certificate and key"),
        (_encrypted_key, "the private key is encrypted"),
    ],
)
async def test_a_broken_replacement_keeps_the_old_certificate_and_warns_once(
    pki: Pki,
    first: trustme.LeafCert,
    renewed: trustme.LeafCert,
    log_lines: Callable[[int], list[str]],
    caplog: pytest.LogCaptureFixture,
    breakage: Callable[[Path, trustme.LeafCert, trustme.LeafCert], None],
    reason: str,
) -> None:
    client = pki.client_context()
    path = write_web_config(pki.directory, {"tls_server_config": tls_section()})
    async with serve(path) as served:
        breakage(pki.directory, first, renewed)
        assert served.reloader.check() is False
        assert await served_certificate(served.url, client) == der(first)
        assert await status_of(served.url + "/metrics", client) == 200
        assert served.reloader.check() is False, "tried again, still broken"
        [warning] = log_lines(logging.WARNING)  # one line, not one per check
        assert "still serving the previous certificate" in warning
        assert reason in warning
        assert "\n" not in warning
        # Repaired: the next check loads it.
        write_pair(pki.directory, renewed)
        assert served.reloader.check() is True
        assert await served_certificate(served.url, client) == der(renewed)
    assert len(log_lines(logging.WARNING)) == 1
    secrets = [b"passphrase-never-logged"]
    for leaf in (first, renewed):
        body = leaf.private_key_pem.bytes().splitlines()[1:-1]
        secrets += [line for line in body if len(line) > 16]
    logged = caplog.text.encode()
    assert b"PRIVATE KEY" not in logged
    assert not [secret for secret in secrets if secret in logged]


async def test_a_swap_to_a_broken_secret_keeps_serving_until_a_good_one_lands(
    pki: Pki,
    first: trustme.LeafCert,
    renewed: trustme.LeafCert,
    log_lines: Callable[[int], list[str]],
) -> None:
    volume = KubeletVolume(pki.directory / "tls")
    volume.write_pair(first)
    document = {"tls_server_config": {"cert_file": "tls/tls.crt", "key_file": "tls/tls.key"}}
    client = pki.client_context()
    async with serve(write_web_config(pki.directory, document)) as served:
        # A Secret edited by hand: the new certificate with the old key.
        mismatched = {"tls.crt": renewed.cert_chain_pems[0].bytes()}
        volume.write(mismatched | {"tls.key": first.private_key_pem.bytes()})
        assert served.reloader.check() is False
        assert await served_certificate(served.url, client) == der(first)
        assert len(log_lines(logging.WARNING)) == 1
        volume.write_pair(renewed)
        assert served.reloader.check() is True
        assert await served_certificate(served.url, client) == der(renewed)


# -- mutual TLS ----------------------------------------------------------------------


async def test_client_ca_rotation_is_honoured(pki: Pki, first: trustme.LeafCert) -> None:
    """The usual rotation: the new CA joins the bundle, clients move, the old CA leaves.
    A CA taken out of client_ca_file is no longer trusted for new connections."""
    tls = tls_section(client_auth_type="RequireAndVerifyClientCert", client_ca_file="client-ca.crt")
    path = write_web_config(pki.directory, {"tls_server_config": tls})
    bundle = pki.directory / "client-ca.crt"
    new_ca = trustme.CA()
    old_client = pki.client_context(identity="prometheus.example.com")
    new_client = pki.client_context(identity="prometheus.example.com", issuer=new_ca)
    async with serve(path) as served:
        url = served.url + "/metrics"
        assert await status_of(url, old_client) == 200
        with pytest.raises(aiohttp.ClientError):
            await status_of(url, new_client)

        bundle.write_bytes(pki.client_ca.cert_pem.bytes() + new_ca.cert_pem.bytes())
        assert served.reloader.check() is True
        assert await status_of(url, old_client) == 200
        assert await status_of(url, new_client) == 200

        bundle.write_bytes(new_ca.cert_pem.bytes())
        assert served.reloader.check() is True
        assert await status_of(url, new_client) == 200
        with pytest.raises(aiohttp.ClientError):
            await status_of(url, old_client)
        # The server certificate is unchanged through all of it.
        assert await served_certificate(served.url, new_client) == der(first)


# -- what is watched, and the watcher ------------------------------------------------


def test_inline_pem_has_nothing_to_watch(pki: Pki) -> None:
    tls = {
        "cert": (pki.directory / "server.crt").read_text(),
        "key": (pki.directory / "server.key").read_text(),
    }
    config = load_web_config(write_web_config(pki.directory, {"tls_server_config": tls}))
    assert config.ssl_context is not None
    assert config.reloader is None
    app = web.Application()
    protect(app, config)
    assert len(app.cleanup_ctx) == 0, "no watcher for inline PEM"


def test_watched_files_are_those_the_context_comes_from(pki: Pki) -> None:
    key = (pki.directory / "server.key").read_text()
    inline_key = {"cert_file": "server.crt", "key": key}
    config = load_web_config(write_web_config(pki.directory, {"tls_server_config": inline_key}))
    assert config.reloader is not None
    assert config.reloader.files == (pki.directory / "server.crt",)
    mutual = tls_section(client_auth_type="VerifyClientCertIfGiven", client_ca_file="client-ca.crt")
    config = load_web_config(write_web_config(pki.directory, {"tls_server_config": mutual}))
    assert config.reloader is not None
    assert config.reloader.files == tuple(
        pki.directory / name for name in ("server.crt", "server.key", "client-ca.crt")
    )
    assert load_web_config(write_web_config(pki.directory, {})).reloader is None


def _watchers() -> list[asyncio.Task[Any]]:
    return [task for task in asyncio.all_tasks() if task.get_name() == "tls-certificate-reload"]


async def test_the_exporter_reloads_by_itself(
    pki: Pki,
    first: trustme.LeafCert,
    renewed: trustme.LeafCert,
    simulation: Simulation,
    monkeypatch: pytest.MonkeyPatch,
    log_lines: Callable[[int], list[str]],
) -> None:
    """create_app, as the command line serves it: the watcher starts and stops with the
    app and picks up a kubelet swap by itself."""
    monkeypatch.setattr(cert_reload, "CERT_CHECK_INTERVAL", POLL_STEP)
    volume = KubeletVolume(pki.directory / "tls")
    volume.write_pair(first)
    document = {"tls_server_config": {"cert_file": "tls/tls.crt", "key_file": "tls/tls.key"}}
    path = write_web_config(pki.directory, document)
    settings = exporter_settings(simulation.base_url, web_config_file=path)
    config = load_web_config(path)
    client = pki.client_context()
    async with serving(create_app(settings, web_config=config), config.ssl_context) as url:
        assert len(_watchers()) == 1
        assert await served_certificate(url, client) == der(first)
        volume.write_pair(renewed)
        for _ in range(POLL_LIMIT):
            if await served_certificate(url, client) == der(renewed):
                break
            await asyncio.sleep(POLL_STEP)
        else:
            pytest.fail("the renewed certificate was never served")
        assert await status_of(url + "/metrics", client) == 200
    assert _watchers() == [], "the watcher stops with the app"
    started, reloaded = log_lines(logging.INFO)[-2:]
    assert started.startswith("checking the TLS certificate files for renewal every 0.02s: ")
    assert reloaded.startswith("TLS certificate reloaded from ")
