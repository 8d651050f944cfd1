"""Certificate renewal without a restart: ``CertificateReloader`` re-reads the
certificate files when they change, and ``watch_certificates`` checks them while the
app runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
import threading
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from aiohttp import web

from exporter.webconfig.model import TlsServerConfig, WebConfigError
from exporter.webconfig.tls import server_context, source, ssl_reason

# Seconds between looks at the certificate files: a renewed certificate is served at
# most this long after the files change (cert-manager renews weeks before expiry).
CERT_CHECK_INTERVAL = 30.0

# Logged under the package's name, as before the split: the logger field of log lines
# (and filters on it) stay as they were.
log = logging.getLogger("exporter.webconfig")

# A file's identity: its resolved path (the kubelet swaps the ``..data`` symlink, not the
# files), modification time, inode and size; None while it cannot be read.
FileState = tuple[str, int, int, int] | None


def watched_files(tls: TlsServerConfig, directory: Path) -> tuple[Path, ...]:
    """The files the served certificate comes from; inline PEM has nothing to watch."""
    sources = [
        source(tls.cert, tls.cert_file, directory, "cert"),
        source(tls.key, tls.key_file, directory, "key"),
    ]
    if (tls.client_auth_type or "NoClientCert") != "NoClientCert":
        sources.append(source(tls.client_ca, tls.client_ca_file, directory, "client_ca"))
    return tuple(path for _, path in sources if path is not None)


def file_states(paths: Sequence[Path]) -> tuple[FileState, ...]:
    states: list[FileState] = []
    for path in paths:
        try:
            stat = path.stat()  # follows symlinks: the identity of what a load would read
            states.append((os.path.realpath(path), stat.st_mtime_ns, stat.st_ino, stat.st_size))
        except OSError:
            states.append(None)
    return tuple(states)


class CertificateReloader:
    """Serves renewed certificate files without a restart.

    ``check()`` compares the files' identity with the one last loaded; on a change it
    builds a whole new context from them, as at start, and new handshakes get it: the
    served context's ``sni_callback`` (which OpenSSL calls for every ClientHello, with
    or without a server name) hands each new connection over to the newest good
    context. Open connections keep the context they shook hands with.

    Why a new context rather than ``load_cert_chain`` again into the served one: a load
    cannot take anything out. A client CA dropped from client_ca_file would stay
    trusted, and a key of another type (ECDSA to RSA) would leave the old certificate
    in its own slot, still chosen by some clients. And a load that fails half-way (a
    new certificate, then a key that does not match it) leaves the served context with
    no usable key: every handshake would fail.

    A change that cannot be loaded (a half-written file, a key not matching the
    certificate, a file gone) logs one warning and the previous certificate stays
    served; every later check tries again, silently for the same files.
    """

    def __init__(
        self,
        served: ssl.SSLContext,
        tls: TlsServerConfig,
        directory: Path,
        files: tuple[Path, ...],
        loaded: tuple[FileState, ...],
    ) -> None:
        self.files = files
        self._served = served
        self._tls = tls
        self._directory = directory
        self._loaded = loaded
        self._failed: tuple[FileState, ...] | None = None
        self._current = served
        self._lock = threading.Lock()  # checks run on a worker thread; one at a time
        served.sni_callback = self._hand_over

    @property
    def context(self) -> ssl.SSLContext:
        """The context new connections get: the served one until a renewal loads."""
        return self._current

    def _hand_over(
        self, connection: ssl.SSLObject, server_name: str | None, served: ssl.SSLContext
    ) -> None:
        current = self._current
        if current is not served:
            connection.context = current

    def check(self) -> bool:
        """Loads the files if they changed since the last good load; True when it did.

        Blocking (it stats and reads files): the watcher runs it on a worker thread."""
        with self._lock:
            before = file_states(self.files)
            if before == self._loaded:
                self._failed = None
                return False
            try:
                fresh = server_context(self._tls, self._directory)
                problems: Sequence[str] = ()
            except WebConfigError as error:
                problems = error.problems
            except (ssl.SSLError, OSError, ValueError) as error:
                problems = [f"tls_server_config: {ssl_reason(error)}"]
            if file_states(self.files) != before:
                return False  # changed while being read (a swap mid-way): next check
            if problems:
                if before != self._failed:  # once per set of files, not at every check
                    self._failed = before
                    log.warning(
                        "TLS certificate files changed but cannot be loaded; still serving "
                        "the previous certificate, trying again at every check: %s",
                        "; ".join(problems),
                    )
                return False
            self._current = fresh
            self._loaded = before
            self._failed = None
        log.info(
            "TLS certificate reloaded from %s; new connections get it",
            ", ".join(str(path) for path in self.files),
        )
        return True


def watch_certificates(
    app: web.Application, reloader: CertificateReloader, interval: float | None = None
) -> None:
    """Runs ``reloader.check`` every ``interval`` seconds (``CERT_CHECK_INTERVAL`` unless
    given) while ``app`` runs."""
    seconds = CERT_CHECK_INTERVAL if interval is None else interval

    async def watcher(_: web.Application) -> AsyncIterator[None]:
        log.info(
            "checking the TLS certificate files for renewal every %gs: %s",
            seconds,
            ", ".join(str(path) for path in reloader.files),
        )
        task = asyncio.create_task(_watch(reloader, seconds), name="tls-certificate-reload")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    app.cleanup_ctx.append(watcher)


async def _watch(reloader: CertificateReloader, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            await asyncio.to_thread(reloader.check)
        except Exception as error:  # a surprise must not end renewals for good
            log.warning("TLS certificate check failed (%s); trying again", type(error).__name__)
