"""What a web config file may say (its schema, checked with pydantic) and what it becomes.

``WebConfigFile`` is the exporter-toolkit format as parsed, strict: an unknown or
misspelt setting is refused. ``WebConfig`` is the checked result the app is served
with. ``WebConfigError`` carries one line per problem, for every module of the package.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from exporter.durations import parse_duration

if TYPE_CHECKING:
    from exporter.webconfig.reload import CertificateReloader

_BCRYPT_HASH = re.compile(r"\$2[abxy]\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}")
# Go's names (tls.CipherSuites()) to OpenSSL's. TLS 1.3 suites are not configurable,
# in Go as here: they are accepted and have no effect.
CIPHER_SUITES = {
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
        unknown = [name for name in value if name not in CIPHER_SUITES]
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
