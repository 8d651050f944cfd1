"""``--web.config.file``: TLS and basic auth in the Prometheus exporter-toolkit format.

The same YAML file the Go exporters take
(https://github.com/prometheus/exporter-toolkit/blob/master/docs/web-configuration.md)::

    tls_server_config:
      cert_file: server.crt          # relative paths: from the file's own directory
      key_file: server.key
      client_auth_type: RequireAndVerifyClientCert
      client_ca_file: ca.crt
      min_version: TLS12
    basic_auth_users:
      prometheus: $2y$10$...         # bcrypt hashes only
    http_server_config:
      headers:
        Strict-Transport-Security: max-age=31536000
    rate_limit:
      interval: 1s
      burst: 20

The file is read and checked once, at start: a bad file stops the exporter with
exit status 2 and one line per problem, as any other bad setting does. Go exporters
re-read it per request; here only the certificate files are re-read, when they change
(``CERT_CHECK_INTERVAL``; see ``CertificateReloader``), so a renewal by cert-manager needs
no restart. Users, headers, rate limit and the rest of the file stay as loaded at start:
changing them takes a restart. Differences from the Go toolkit, each refused with its
reason rather than silently ignored:
``RequestClientCert`` and ``RequireAnyClientCert`` (client certificates that are
not verified prove nothing, and Python's ``ssl`` cannot ask for one without
verifying it) and ``curve_preferences`` (Python's ``ssl`` cannot set a curve list).
``http2`` is accepted and ignored: aiohttp serves HTTP/1.1.

Stricter than the Go toolkit: duplicate keys, a ``tls_server_config`` without a
certificate (Go would quietly serve plain HTTP), and basic auth over plain HTTP
unless ``--web.allow-insecure-basic-auth`` says TLS ends in front of the exporter.

/healthz and /readyz answer without credentials (and outside the rate limit) so
that probes keep working; everything else, the landing page included, needs them.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import os
import re
import secrets
import ssl
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import bcrypt
from aiohttp import BasicAuth, web
from cachetools import LRUCache
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from exporter.durations import parse_duration

FLAG = "--web.config.file (OPENAI_EXPORTER_WEB_CONFIG_FILE)"
INSECURE_FLAG = "--web.allow-insecure-basic-auth (OPENAI_EXPORTER_WEB_ALLOW_INSECURE_BASIC_AUTH)"
PROBE_PATHS = frozenset({"/healthz", "/readyz"})
REALM = "openai-key-exporter"
MAX_FILE_BYTES = 1024 * 1024
BCRYPT_MAX_PASSWORD_BYTES = 72  # bcrypt reads no further; the tools that hash truncate too
VERIFIED_CACHE_SIZE = 64
MAX_PENDING_VERIFICATIONS = 32
# Seconds between looks at the certificate files: a renewed certificate is served at
# most this long after the files change (cert-manager renews weeks before expiry).
CERT_CHECK_INTERVAL = 30.0

log = logging.getLogger(__name__)

_BCRYPT_HASH = re.compile(r"\$2[abxy]\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}")
_TLS_VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}
# Go's names (tls.CipherSuites()) to OpenSSL's. TLS 1.3 suites are not configurable,
# in Go as here: they are accepted and have no effect.
_CIPHER_SUITES = {
    "TLS_RSA_WITH_AES_128_CBC_SHA": "AES128-SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA": "AES256-SHA",
    "TLS_RSA_WITH_AES_128_GCM_SHA256": "AES128-GCM-SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384": "AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_AES_128_GCM_SHA256": "",
    "TLS_AES_256_GCM_SHA384": "",
    "TLS_CHACHA20_POLY1305_SHA256": "",
}
# The headers the toolkit lets a file set, with the values it accepts (None: any).
_HEADERS: dict[str, frozenset[str] | None] = {
    "Content-Security-Policy": None,
    "X-Frame-Options": frozenset({"deny", "sameorigin"}),
    "X-Content-Type-Options": frozenset({"nosniff"}),
    "X-XSS-Protection": None,
    "Strict-Transport-Security": None,
}


class WebConfigError(Exception):
    """The web config file is unusable; each entry is one line naming the setting."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = tuple(problems)


# -- the file's schema ---------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, hide_input_in_errors=True)


ClientAuthType = Literal[
    "",  # Go's zero value: NoClientCert
    "NoClientCert",
    "RequestClientCert",
    "RequireAnyClientCert",
    "RequireClientCert",
    "VerifyClientCertIfGiven",
    "RequireAndVerifyClientCert",
]
TlsVersionName = Literal["TLS10", "TLS11", "TLS12", "TLS13"]


class TlsServerConfig(_Strict):
    cert_file: str | None = None
    key_file: str | None = None
    cert: str | None = None
    key: str | None = Field(default=None, repr=False)
    client_ca_file: str | None = None
    client_ca: str | None = None
    client_auth_type: ClientAuthType = "NoClientCert"
    client_allowed_sans: list[str] = Field(default_factory=list)
    min_version: TlsVersionName = "TLS12"
    max_version: TlsVersionName = "TLS13"
    cipher_suites: list[str] = Field(default_factory=list)
    prefer_server_cipher_suites: bool = True
    curve_preferences: list[str] = Field(default_factory=list)

    @field_validator("cipher_suites")
    @classmethod
    def _known_suites(cls, value: list[str]) -> list[str]:
        unknown = [name for name in value if name not in _CIPHER_SUITES]
        if unknown:
            raise ValueError(
                f"unknown or insecure cipher suite {unknown[0]!r}; use Go's names, like "
                "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
            )
        return value


class HttpServerConfig(_Strict):
    http2: bool = True
    headers: dict[str, str] = Field(default_factory=dict)

    @field_validator("headers")
    @classmethod
    def _allowed_headers(cls, value: dict[str, str]) -> dict[str, str]:
        for name, text in value.items():
            if name not in _HEADERS:
                raise ValueError(
                    f"header {name!r} cannot be configured; allowed: {', '.join(_HEADERS)}"
                )
            allowed = _HEADERS[name]
            if allowed is not None and text.lower() not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(sorted(allowed))}")
        return value


class RateLimitConfig(_Strict):
    interval: str | int | float = 0
    burst: int = Field(default=0, ge=0)

    def seconds(self) -> float:
        return parse_duration(str(self.interval))

    @field_validator("interval")
    @classmethod
    def _duration(cls, value: str | int | float) -> str | int | float:
        seconds = parse_duration(str(value))  # ValueError names the bad duration
        if seconds < 0:
            raise ValueError("must not be negative")
        return value


class WebConfigFile(_Strict):
    tls_server_config: TlsServerConfig | None = None
    http_server_config: HttpServerConfig | None = None
    basic_auth_users: dict[str, str] = Field(default_factory=dict, repr=False)
    rate_limit: RateLimitConfig | None = None

    @field_validator("basic_auth_users")
    @classmethod
    def _bcrypt_hashes(cls, value: dict[str, str]) -> dict[str, str]:
        for user, hashed in value.items():
            if ":" in user or not user:
                raise ValueError(f"user name {user!r} is empty or holds ':'; it could never log in")
            if not _BCRYPT_HASH.fullmatch(hashed):
                # Never echo the value: someone may have pasted a password instead of a hash.
                raise ValueError(
                    f"the password of {user!r} is not a bcrypt hash ($2y$10$... from "
                    "htpasswd -nBC 10 ''); plain passwords are not accepted"
                )
        return value


# -- what the file becomes -----------------------------------------------------------


@dataclass(frozen=True)
class WebConfig:
    """The checked web configuration: an SSL context to serve with and the guards."""

    path: Path | None = None
    ssl_context: ssl.SSLContext | None = None
    users: Mapping[str, bytes] = field(default_factory=dict, repr=False)
    headers: Mapping[str, str] = field(default_factory=dict)
    allowed_sans: frozenset[str] = frozenset()
    rate_interval: float = 0.0
    rate_burst: int = 0
    # Re-reads the certificate files of ssl_context when they change; None when TLS is off
    # or its certificate, key and client CA are all inline (nothing to watch).
    reloader: CertificateReloader | None = field(default=None, compare=False, repr=False)

    @property
    def tls(self) -> bool:
        return self.ssl_context is not None

    def describe(self) -> str:
        """How the exporter is protected, for the start-up log line."""
        parts = []
        if self.ssl_context is not None:
            mode = {
                ssl.CERT_NONE: "",
                ssl.CERT_OPTIONAL: ", client certificates verified when given",
                ssl.CERT_REQUIRED: ", client certificates required",
            }[self.ssl_context.verify_mode]
            parts.append(f"TLS{mode}")
        if self.users:
            parts.append(f"basic auth ({len(self.users)} users)")
        if self.rate_interval > 0:
            parts.append(f"rate limit {self.rate_burst} per {self.rate_interval:g}s")
        return ", ".join(parts) or "no TLS, no authentication"


class _NoDuplicatesLoader:
    """PyYAML's safe loader, refusing a key given twice (Go's strict loading does too)."""

    @staticmethod
    def load(text: str) -> Any:
        import yaml

        class Loader(yaml.SafeLoader):
            pass

        def mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
            seen: set[Any] = set()
            for key_node, _ in node.value:
                key = loader.construct_object(key_node)
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"key {key!r} appears twice", key_node.start_mark
                    )
                seen.add(key)
            return loader.construct_mapping(node)

        Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
        return yaml.load(text, Loader=Loader)  # noqa: S506 - a SafeLoader subclass


def _parse_yaml(text: str) -> Any:
    try:
        import yaml
    except ImportError:  # pragma: no cover - PyYAML ships with the exporter
        import json

        try:
            return json.loads(text)
        except ValueError:
            raise WebConfigError(["is not JSON, and PyYAML (needed for YAML) is missing"]) from None
    try:
        return _NoDuplicatesLoader.load(text)
    except yaml.MarkedYAMLError as error:
        # Only the problem and where: PyYAML's own text quotes the line, which may hold a secret.
        mark = error.problem_mark or error.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise WebConfigError(
            [f"is not valid YAML: {error.problem or error.context}{where}"]
        ) from None
    except yaml.YAMLError:
        raise WebConfigError(["is not valid YAML"]) from None


def _schema_problems(error: ValidationError) -> list[str]:
    problems = []
    for detail in error.errors(include_input=False, include_url=False):
        where = ".".join(str(part) for part in detail["loc"])
        message = str(detail["msg"]).removeprefix("Value error, ")
        if detail["type"] == "extra_forbidden":
            message = "unknown setting (a typo, or not in the exporter-toolkit format)"
        problems.append(f"{where}: {message}" if where else message)
    return problems


def load_web_config(path: Path | None, *, allow_insecure_basic_auth: bool = False) -> WebConfig:
    """The web config in ``path`` (None: no file, nothing to protect), checked in full.

    Raises ``WebConfigError`` listing every problem, each prefixed with the flag.
    """
    if path is None:
        return WebConfig()
    try:
        return _load(path, allow_insecure_basic_auth)
    except WebConfigError as error:
        raise WebConfigError([f"{FLAG}: {path}: {problem}" for problem in error.problems]) from None


def _load(path: Path, allow_insecure_basic_auth: bool) -> WebConfig:
    try:
        with path.open("rb") as stream:
            raw = stream.read(MAX_FILE_BYTES + 1)
    except OSError as error:
        raise WebConfigError([f"cannot read: {error.strerror or type(error).__name__}"]) from None
    if len(raw) > MAX_FILE_BYTES:
        raise WebConfigError([f"is larger than {MAX_FILE_BYTES} bytes; not a web config"])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise WebConfigError(["is not UTF-8 text"]) from None
    document = _parse_yaml(text)
    if document is None:
        document = {}  # an empty file: no TLS, no authentication, as in Go
    if not isinstance(document, dict):
        raise WebConfigError(["must be a YAML mapping (tls_server_config, basic_auth_users...)"])
    try:
        parsed = WebConfigFile.model_validate(document)
    except ValidationError as error:
        raise WebConfigError(_schema_problems(error)) from None

    tls = parsed.tls_server_config
    if tls is not None and tls == TlsServerConfig():
        tls = None  # `tls_server_config: {}`: as absent
    ssl_context = reloader = None
    if tls is not None:
        # The files' identity before they are read: a change while loading is seen later.
        watched = _watched_files(tls, path.parent)
        loaded = _file_states(watched)
        ssl_context = _ssl_context(tls, path.parent)
        if watched:
            reloader = CertificateReloader(ssl_context, tls, path.parent, watched, loaded)
    if parsed.basic_auth_users and ssl_context is None and not allow_insecure_basic_auth:
        raise WebConfigError(
            [
                "basic_auth_users without tls_server_config would send passwords in clear "
                f"text; add tls_server_config, or set {INSECURE_FLAG} when TLS ends in front "
                "of the exporter"
            ]
        )
    headers = {} if parsed.http_server_config is None else parsed.http_server_config.headers
    rate = parsed.rate_limit
    return WebConfig(
        path=path,
        ssl_context=ssl_context,
        users={user: hashed.encode() for user, hashed in parsed.basic_auth_users.items()},
        headers=headers,
        allowed_sans=frozenset(tls.client_allowed_sans) if tls else frozenset(),
        rate_interval=rate.seconds() if rate and rate.burst > 0 else 0.0,
        rate_burst=rate.burst if rate else 0,
        reloader=reloader,
    )


# -- TLS -----------------------------------------------------------------------------


class _EncryptedKeyError(Exception):
    pass


def _no_passphrase() -> bytes:
    # Without a callback OpenSSL would prompt on the terminal and hang a container.
    raise _EncryptedKeyError


@contextlib.contextmanager
def _pem_file(text: str) -> Iterator[str]:
    """Inline PEM as a path ``ssl`` can load: an anonymous memory file where Linux has
    them (a read-only root filesystem is fine), else a private temporary file."""
    data = text.encode()
    if hasattr(os, "memfd_create"):
        descriptor = os.memfd_create("web-config-pem", os.MFD_CLOEXEC)
        try:
            os.write(descriptor, data)
            yield f"/proc/self/fd/{descriptor}"
        finally:
            os.close(descriptor)
        return
    with tempfile.NamedTemporaryFile("wb", suffix=".pem") as handle:  # pragma: no cover
        handle.write(data)
        handle.flush()
        yield handle.name


def _source(
    inline: str | None, file: str | None, directory: Path, name: str
) -> tuple[str | None, Path | None]:
    if inline is not None and file is not None:
        raise WebConfigError([f"tls_server_config: give {name} or {name}_file, not both"])
    if file is None:
        return inline, None
    candidate = Path(file)
    return None, candidate if candidate.is_absolute() else directory / candidate


def _ssl_context(tls: TlsServerConfig, directory: Path) -> ssl.SSLContext:
    problems: list[str] = []
    cert_text, cert_path = _source(tls.cert, tls.cert_file, directory, "cert")
    key_text, key_path = _source(tls.key, tls.key_file, directory, "key")
    ca_text, ca_path = _source(tls.client_ca, tls.client_ca_file, directory, "client_ca")
    if cert_text is None and cert_path is None:
        problems.append("tls_server_config: cert_file (or cert) is required")
    if key_text is None and key_path is None:
        problems.append("tls_server_config: key_file (or key) is required")
    auth = tls.client_auth_type or "NoClientCert"
    has_ca = ca_text is not None or ca_path is not None
    if auth in ("RequestClientCert", "RequireAnyClientCert", "RequireClientCert"):
        problems.append(
            f"tls_server_config.client_auth_type: {auth} accepts client certificates without "
            "verifying them, which proves nothing; use RequireAndVerifyClientCert (or "
            "VerifyClientCertIfGiven) with client_ca_file"
        )
    elif auth == "NoClientCert" and has_ca:
        problems.append(
            "tls_server_config: client_ca_file is set but client_auth_type is NoClientCert; "
            "set client_auth_type: RequireAndVerifyClientCert"
        )
    elif auth != "NoClientCert" and not has_ca:
        problems.append(f"tls_server_config: client_auth_type {auth} needs client_ca_file")
    if tls.client_allowed_sans and auth != "RequireAndVerifyClientCert":
        problems.append(
            "tls_server_config: client_allowed_sans needs client_auth_type: "
            "RequireAndVerifyClientCert (otherwise a client may send no certificate)"
        )
    if _TLS_VERSIONS[tls.min_version] > _TLS_VERSIONS[tls.max_version]:
        problems.append("tls_server_config: min_version must not exceed max_version")
    if tls.curve_preferences:
        problems.append(
            "tls_server_config.curve_preferences: not supported by this exporter (Python's "
            "ssl cannot set a curve list); remove it to use OpenSSL's defaults"
        )
    if problems:
        raise WebConfigError(problems)

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.minimum_version = _TLS_VERSIONS[tls.min_version]
        context.maximum_version = _TLS_VERSIONS[tls.max_version]
    except ValueError as error:  # pragma: no cover - an OpenSSL built without a version
        raise WebConfigError([f"tls_server_config: {error}"]) from None
    _load_chain(context, cert_text, cert_path, key_text, key_path)
    if auth != "NoClientCert":
        context.verify_mode = (
            ssl.CERT_REQUIRED if auth == "RequireAndVerifyClientCert" else ssl.CERT_OPTIONAL
        )
        _load_client_ca(context, ca_text, ca_path)
    suites = [_CIPHER_SUITES[name] for name in tls.cipher_suites if _CIPHER_SUITES[name]]
    if suites:
        try:
            context.set_ciphers(":".join(suites))
        except ssl.SSLError:
            raise WebConfigError(
                ["tls_server_config.cipher_suites: none of them is available in this OpenSSL"]
            ) from None
    if tls.prefer_server_cipher_suites:
        context.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    return context


def _ssl_reason(error: Exception) -> str:
    if isinstance(error, ssl.SSLError):
        return error.reason or str(error.args[-1] if error.args else "")
    if isinstance(error, OSError):
        return error.strerror or type(error).__name__
    return type(error).__name__


def _load_chain(
    context: ssl.SSLContext,
    cert_text: str | None,
    cert_path: Path | None,
    key_text: str | None,
    key_path: Path | None,
) -> None:
    with contextlib.ExitStack() as stack:
        cert = str(cert_path) if cert_path else stack.enter_context(_pem_file(cert_text or ""))
        key = str(key_path) if key_path else stack.enter_context(_pem_file(key_text or ""))
        for name, where, inline in (("cert", cert_path, cert_text), ("key", key_path, key_text)):
            if where is not None and not where.is_file():
                raise WebConfigError([f"tls_server_config.{name}_file: {where}: no such file"])
            if inline is not None and "-----BEGIN" not in inline:
                raise WebConfigError([f"tls_server_config.{name}: not PEM text"])
        try:
            context.load_cert_chain(cert, key, password=_no_passphrase)
        except _EncryptedKeyError:
            raise WebConfigError(
                ["tls_server_config: the private key is encrypted; give an unencrypted key"]
            ) from None
        except (ssl.SSLError, OSError, ValueError) as error:
            # Never str(error) of inline material: only OpenSSL's short reason.
            raise WebConfigError(
                [
                    "tls_server_config: cannot load the certificate and key "
                    f"({_ssl_reason(error)}); are they PEM, and do they belong together?"
                ]
            ) from None


def _load_client_ca(context: ssl.SSLContext, ca_text: str | None, ca_path: Path | None) -> None:
    try:
        if ca_path is not None:
            if not ca_path.is_file():
                raise WebConfigError([f"tls_server_config.client_ca_file: {ca_path}: no such file"])
            context.load_verify_locations(cafile=str(ca_path))
        else:
            context.load_verify_locations(cadata=ca_text or "")
    except (ssl.SSLError, OSError, ValueError) as error:
        raise WebConfigError(
            [f"tls_server_config: cannot load the client CA ({_ssl_reason(error)}); is it PEM?"]
        ) from None


# -- certificate renewal -------------------------------------------------------------

# A file's identity: its resolved path (the kubelet swaps the ``..data`` symlink, not the
# files), modification time, inode and size; None while it cannot be read.
FileState = tuple[str, int, int, int] | None


def _watched_files(tls: TlsServerConfig, directory: Path) -> tuple[Path, ...]:
    """The files the served certificate comes from; inline PEM has nothing to watch."""
    sources = [
        _source(tls.cert, tls.cert_file, directory, "cert"),
        _source(tls.key, tls.key_file, directory, "key"),
    ]
    if (tls.client_auth_type or "NoClientCert") != "NoClientCert":
        sources.append(_source(tls.client_ca, tls.client_ca_file, directory, "client_ca"))
    return tuple(path for _, path in sources if path is not None)


def _file_states(paths: Sequence[Path]) -> tuple[FileState, ...]:
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
            before = _file_states(self.files)
            if before == self._loaded:
                self._failed = None
                return False
            try:
                fresh = _ssl_context(self._tls, self._directory)
                problems: Sequence[str] = ()
            except WebConfigError as error:
                problems = error.problems
            except (ssl.SSLError, OSError, ValueError) as error:
                problems = [f"tls_server_config: {_ssl_reason(error)}"]
            if _file_states(self.files) != before:
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
    app: web.Application, reloader: CertificateReloader, interval: float
) -> None:
    """Runs ``reloader.check`` every ``interval`` seconds while ``app`` runs."""

    async def watcher(_: web.Application) -> AsyncIterator[None]:
        log.info(
            "checking the TLS certificate files for renewal every %gs: %s",
            interval,
            ", ".join(str(path) for path in reloader.files),
        )
        task = asyncio.create_task(_watch(reloader, interval), name="tls-certificate-reload")
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


# -- the guards on every request -----------------------------------------------------

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class BasicAuthGuard:
    """Checks ``Authorization: Basic`` against bcrypt hashes, paying bcrypt once per
    credential: a successful check is remembered under an HMAC of user, hash and
    password with a key made at start (so the cache holds no password and its keys
    reveal nothing). Failures are never remembered: each costs a full bcrypt, which
    is what slows down guessing. Unknown users cost a bcrypt too, so timing does not
    tell which users exist. bcrypt runs on its own two threads, never on the event
    loop, and never more than ``MAX_PENDING_VERIFICATIONS`` wait for them."""

    def __init__(
        self, users: Mapping[str, bytes], *, checkpw: Callable[[bytes, bytes], bool] | None = None
    ) -> None:
        self._users = dict(users)
        self._checkpw = checkpw or _checkpw
        self._decoy = next(iter(self._users.values()))  # for unknown users' timing
        self._secret = secrets.token_bytes(32)
        self._verified: LRUCache[bytes, bool] = LRUCache(maxsize=VERIFIED_CACHE_SIZE)
        self._executor: ThreadPoolExecutor | None = None
        self._pending = 0

    def _cache_key(self, user: bytes, hashed: bytes, password: bytes) -> bytes:
        message = b"".join(len(part).to_bytes(4, "big") + part for part in (user, hashed, password))
        return hmac.new(self._secret, message, hashlib.sha256).digest()

    async def check(self, header: str | None) -> bool | None:
        """True: let in; False: refuse (401); None: too many checks waiting (429)."""
        if header is None:
            return False
        try:
            credentials = BasicAuth.decode(header, encoding="utf-8")
        except ValueError:
            return False
        user = credentials.login.encode()
        password = credentials.password.encode()[:BCRYPT_MAX_PASSWORD_BYTES]
        hashed = self._users.get(credentials.login)
        key = self._cache_key(user, hashed or b"", password)
        if hashed is not None and key in self._verified:
            return True
        if self._pending >= MAX_PENDING_VERIFICATIONS:
            return None
        self._pending += 1
        try:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(2, thread_name_prefix="bcrypt")
            loop = asyncio.get_running_loop()
            matched = await loop.run_in_executor(
                self._executor, self._checkpw, password, hashed or self._decoy
            )
        finally:
            self._pending -= 1
        if hashed is None or not matched:
            return False
        self._verified[key] = True
        return True

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)


def _checkpw(password: bytes, hashed: bytes) -> bool:
    try:
        return bcrypt.checkpw(password, hashed)
    except ValueError:  # a NUL byte, or a hash bcrypt cannot read
        return False


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
    (``CERT_CHECK_INTERVAL`` unless given) while the app runs."""
    if config.reloader is not None:
        interval = CERT_CHECK_INTERVAL if cert_check_interval is None else cert_check_interval
        watch_certificates(app, config.reloader, interval)
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
