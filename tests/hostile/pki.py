"""Generated certificates (trustme) and web config files for the protected /metrics tests."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bcrypt
import trustme
import yaml
from aiohttp import web
from aiohttp.test_utils import TestServer

# Cost 4, bcrypt's least: the same code path as cost 10, a hundred times faster.
PROMETHEUS_PASSWORD = "scrape-me-\u00e9\u6f22"  # non-ASCII on purpose
PROMETHEUS_HASH = bcrypt.hashpw(PROMETHEUS_PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
OTHER_PASSWORD = "other-password"
OTHER_HASH = bcrypt.hashpw(OTHER_PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()


@dataclass
class Pki:
    """A server CA with a server certificate for 127.0.0.1, and a client CA with clients."""

    directory: Path
    server_ca: Any
    client_ca: Any
    stranger_ca: Any  # issues client certificates nobody trusts

    @classmethod
    def create(cls, directory: Path) -> Pki:
        pki = cls(directory, trustme.CA(), trustme.CA(), trustme.CA())
        server = pki.server_ca.issue_cert("127.0.0.1", "localhost")
        server.cert_chain_pems[0].write_to_path(str(directory / "server.crt"))
        server.private_key_pem.write_to_path(str(directory / "server.key"))
        pki.client_ca.cert_pem.write_to_path(str(directory / "client-ca.crt"))
        return pki

    def client_context(
        self,
        *,
        identity: str | None = None,
        issuer: Any = None,
        maximum_version: ssl.TLSVersion | None = None,
    ) -> ssl.SSLContext:
        """A client that trusts the server CA, presenting a certificate for `identity`."""
        context = ssl.create_default_context()
        self.server_ca.configure_trust(context)
        if identity is not None:
            (issuer or self.client_ca).issue_cert(identity).configure_cert(context)
        if maximum_version is not None:
            context.maximum_version = maximum_version
        return context

    def untrusting_client(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        self.stranger_ca.configure_trust(context)
        return context


def write_web_config(directory: Path, document: object, name: str = "web.yml") -> Path:
    path = directory / name
    text = document if isinstance(document, str) else yaml.safe_dump(document)
    path.write_text(text)
    return path


def tls_section(**extra: object) -> dict[str, object]:
    """Relative paths on purpose: they resolve against the web config file's directory."""
    return {"cert_file": "server.crt", "key_file": "server.key", **extra}


@asynccontextmanager
async def serving(app: web.Application, ssl_context: ssl.SSLContext | None) -> AsyncIterator[str]:
    """Serves `app` on loopback, with TLS when given a context; yields its base URL."""
    server = TestServer(app)
    await server.start_server(ssl=ssl_context)
    try:
        yield str(server.make_url("")).rstrip("/")
    finally:
        await server.close()
