"""Settings: environment variables and dotted flags, validated once, all at start.

Every setting has a flag in the style of Prometheus exporters and an environment
variable; a flag given on the command line wins over the environment. Problems are
collected and reported one line each, naming the flag and the variable.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    BeforeValidator,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from exporter.collectors.catalog import COLLECTOR_DEFAULTS, COLLECTOR_NAMES
from exporter.durations import parse_duration

if TYPE_CHECKING:
    from exporter.organizations.schema import OrganizationsFile

ENV_PREFIX = "OPENAI_EXPORTER_"
DEFAULT_PORT = 9471
DEFAULT_BASE_URL = "https://api.openai.com/v1"
RESERVED_PATHS = ("/", "/probe", "/healthz", "/readyz")
DEFAULT_RETRY_INTERVAL = 60.0
# What --usage.group-by can name: the usage series' labels besides source.
USAGE_DIMENSIONS = ("project_id", "api_key_id", "model")
# The lookbacks must fit one page: hourly usage buckets (limit up to 168 of them) and
# daily cost buckets (up to 180, which also cover the month so far).
MAX_USAGE_LOOKBACK = 167 * 3600.0
MAX_COSTS_LOOKBACK = 178 * 86400.0


def _duration(value: object) -> object:
    if isinstance(value, str):
        return parse_duration(value)
    return value


Duration = Annotated[float, BeforeValidator(_duration)]


@dataclass(frozen=True)
class ListenAddress:
    host: str | None  # None: every interface
    port: int

    def __str__(self) -> str:
        host = self.host or ""
        return f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"


_HOST = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?")
# What a request path can carry as is (RFC 3986 pchar and "/"), so a route stays reachable.
_PATH = re.compile(r"/[A-Za-z0-9._~!$&'()*+,;=:@/%-]*")


def check_base_url(value: str) -> str:
    """An http(s) URL without its trailing slash, or ``ValueError`` saying what it must be."""
    if not re.fullmatch(r"https?://[^/\s]+(/\S*)?", value):
        raise ValueError("must be an http:// or https:// URL, like " + DEFAULT_BASE_URL)
    return value.rstrip("/")


def parse_listen_address(text: str) -> ListenAddress:
    """``host:port``, ``:port`` or ``[v6]:port``."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not port_text.isdigit():
        raise ValueError(f"expected host:port (like :{DEFAULT_PORT} or 127.0.0.1:{DEFAULT_PORT})")
    port = int(port_text)
    if port > 65535:
        raise ValueError(f"port {port} is out of range 0..65535")
    if host.startswith("[") or host.endswith("]"):
        try:
            if not (host.startswith("[") and host.endswith("]")):
                raise ValueError(host)
            host = str(ipaddress.IPv6Address(host[1:-1]))
        except ValueError:
            raise ValueError(f"{host!r} is not a bracketed IPv6 address like [::1]") from None
    elif host and not _HOST.fullmatch(host):
        raise ValueError(f"{host!r} is not a host name or IP address")
    return ListenAddress(host or None, port)


class Settings(BaseSettings):
    """The whole configuration of one exporter process."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        extra="forbid",
        frozen=True,
        populate_by_name=True,
        hide_input_in_errors=True,
    )

    admin_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("admin_key", "OPENAI_ADMIN_KEY")
    )
    admin_key_file: Path | None = Field(
        default=None, validation_alias=AliasChoices("admin_key_file", "OPENAI_ADMIN_KEY_FILE")
    )
    base_url: str = Field(
        default=DEFAULT_BASE_URL, validation_alias=AliasChoices("base_url", "OPENAI_BASE_URL")
    )

    # The organizations, each its own scrape target (exporter.organizations); None: the
    # one organization of the settings above.
    config_file: Path | None = None
    web_listen_address: str = f":{DEFAULT_PORT}"
    web_telemetry_path: str = "/metrics"
    web_config_file: Path | None = None
    web_allow_insecure_basic_auth: bool = False
    cache_ttl: Duration = Field(default=300.0, gt=0)
    # None: the smaller of 1m and the TTL, so shortening the TTL alone just works.
    cache_retry_interval: Duration | None = Field(default=None, gt=0)
    scrape_timeout_margin: Duration = Field(default=0.5, ge=0)
    scrape_default_timeout: Duration = Field(default=10.0, gt=0)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["text", "json"] = "text"
    openai_concurrency: int = Field(default=8, ge=1, le=64)
    openai_request_timeout: Duration = Field(default=30.0, gt=0)
    openai_max_retries: int = Field(default=4, ge=0, le=10)
    openai_refresh_timeout: Duration = Field(default=120.0, gt=0)
    openai_include_archived: bool = False
    openai_project_include: re.Pattern[str] | None = None
    openai_project_exclude: re.Pattern[str] | None = None
    metrics_owner_email: bool = False
    usage_interval: Duration = Field(default=300.0, gt=0)
    usage_lookback: Duration = Field(default=3 * 3600.0, gt=0)
    usage_group_by: str = ",".join(USAGE_DIMENSIONS)
    costs_interval: Duration = Field(default=3600.0, gt=0)
    costs_lookback: Duration = Field(default=3 * 86400.0, gt=0)
    audit_interval: Duration = Field(default=60.0, gt=0)
    audit_overlap: Duration = Field(default=600.0, ge=1)
    audit_backfill: Duration = Field(default=7 * 86400.0, ge=0)
    audit_backfill_max_pages: int = Field(default=100, ge=1, le=10_000)
    audit_log_events: bool = False
    audit_log_personal_data: bool = False
    demo: bool = False
    # Resolved by load_settings from --collector.<name> and OPENAI_EXPORTER_COLLECTOR_<NAME>.
    enabled_collectors: tuple[str, ...] = tuple(
        name for name, default in COLLECTOR_DEFAULTS.items() if default
    )

    @field_validator("web_listen_address")
    @classmethod
    def _check_listen_address(cls, value: str) -> str:
        parse_listen_address(value)
        return value

    @field_validator("web_telemetry_path")
    @classmethod
    def _check_telemetry_path(cls, value: str) -> str:
        if not value.startswith("/") or value in RESERVED_PATHS:
            raise ValueError(f"must start with / and not be one of {', '.join(RESERVED_PATHS)}")
        if not _PATH.fullmatch(value):
            raise ValueError("must be a plain URL path: no spaces, '?' or '#'")
        return value

    @field_validator("base_url")
    @classmethod
    def _check_base_url(cls, value: str) -> str:
        return check_base_url(value)

    @field_validator("admin_key_file")
    @classmethod
    def _check_admin_key_file(cls, value: Path | None) -> Path | None:
        # Re-read at every refresh; checked now too, so a wrong path fails at start.
        if value is not None:
            try:
                with value.open("rb"):
                    pass
            except OSError as error:
                raise ValueError(f"cannot read: {error.strerror or type(error).__name__}") from None
        return value

    @field_validator("usage_lookback")
    @classmethod
    def _check_usage_lookback(cls, value: float) -> float:
        if value > MAX_USAGE_LOOKBACK:
            raise ValueError("must be at most 167h: its hourly buckets must fit one page (168)")
        return value

    @field_validator("costs_lookback")
    @classmethod
    def _check_costs_lookback(cls, value: float) -> float:
        if value > MAX_COSTS_LOOKBACK:
            raise ValueError("must be at most 178d: its daily buckets must fit one page (180)")
        return value

    @field_validator("usage_group_by")
    @classmethod
    def _check_usage_group_by(cls, value: str) -> str:
        names = [name.strip() for name in value.split(",") if name.strip()]
        unknown = sorted(set(names) - set(USAGE_DIMENSIONS))
        if unknown:
            raise ValueError(
                f"unknown dimension {', '.join(unknown)}; known: {', '.join(USAGE_DIMENSIONS)}"
            )
        return ",".join(name for name in USAGE_DIMENSIONS if name in names)

    @field_validator("openai_project_include")
    @classmethod
    def _check_include(cls, value: re.Pattern[str] | None) -> re.Pattern[str] | None:
        if value is not None and not value.pattern:
            raise ValueError("is empty, which would drop every project; unset it to keep all")
        return value

    @field_validator("admin_key")
    @classmethod
    def _check_admin_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().strip():
            raise ValueError("is empty")
        return value

    @model_validator(mode="after")
    def _check_combinations(self) -> Settings:
        if self.config_file is not None:
            # A key that no organization would use: refused rather than silently ignored.
            if self.admin_key is not None or self.admin_key_file is not None:
                given = (
                    "OPENAI_ADMIN_KEY" if self.admin_key is not None else "OPENAI_ADMIN_KEY_FILE"
                )
                raise ValueError(
                    f"{given} is set, but with --config.file (OPENAI_EXPORTER_CONFIG_FILE) each "
                    "organization names its own admin_key_file: unset it"
                )
        elif self.admin_key is not None and self.admin_key_file is not None:
            raise ValueError(
                "OPENAI_ADMIN_KEY and OPENAI_ADMIN_KEY_FILE are both set: keep only one"
            )
        if (
            self.admin_key is None
            and self.admin_key_file is None
            and self.config_file is None
            and not self.demo
        ):
            raise ValueError(
                "no admin key: set OPENAI_ADMIN_KEY, or OPENAI_ADMIN_KEY_FILE to a file holding it "
                "(an sk-admin-... key with read access to Organization Administration), "
                "name the organizations in --config.file, or run with --demo"
            )
        if self.scrape_timeout_margin >= self.scrape_default_timeout:
            raise ValueError(
                "--scrape.timeout-margin (OPENAI_EXPORTER_SCRAPE_TIMEOUT_MARGIN) must be below "
                "--scrape.default-timeout (OPENAI_EXPORTER_SCRAPE_DEFAULT_TIMEOUT)"
            )
        if self.audit_log_personal_data and not self.audit_log_events:
            raise ValueError(
                "--audit.log-personal-data (OPENAI_EXPORTER_AUDIT_LOG_PERSONAL_DATA) needs "
                "--audit.log-events (OPENAI_EXPORTER_AUDIT_LOG_EVENTS)"
            )
        if self.cache_retry_interval is not None and self.cache_retry_interval > self.cache_ttl:
            raise ValueError(
                "--cache.retry-interval (OPENAI_EXPORTER_CACHE_RETRY_INTERVAL) must not exceed "
                "--cache.ttl (OPENAI_EXPORTER_CACHE_TTL)"
            )
        return self

    @field_validator("enabled_collectors")
    @classmethod
    def _check_collectors(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(value) - set(COLLECTOR_NAMES))
        if unknown:
            raise ValueError(
                f"unknown collector {', '.join(unknown)}; known: {', '.join(COLLECTOR_NAMES)}"
            )
        return tuple(name for name in COLLECTOR_NAMES if name in value)

    @property
    def usage_dimensions(self) -> tuple[str, ...]:
        """The usage dimensions grouped by, in label order (may be none)."""
        return tuple(name for name in self.usage_group_by.split(",") if name)

    @property
    def listen_address(self) -> ListenAddress:
        return parse_listen_address(self.web_listen_address)

    @property
    def retry_interval(self) -> float:
        """Wait after a failed or partial refresh: as set, else min(1m, TTL)."""
        if self.cache_retry_interval is not None:
            return self.cache_retry_interval
        return min(DEFAULT_RETRY_INTERVAL, self.cache_ttl)


@dataclass(frozen=True)
class Option:
    """One setting as the command line and the environment name it."""

    flag: str
    field: str
    help: str
    kind: Literal["value", "bool"] = "value"

    @property
    def env(self) -> str:
        alias = _ENV_ALIASES.get(self.field)
        return alias if alias else ENV_PREFIX + self.field.upper()


_ENV_ALIASES = {
    "admin_key": "OPENAI_ADMIN_KEY",
    "admin_key_file": "OPENAI_ADMIN_KEY_FILE",
    "base_url": "OPENAI_BASE_URL",
}

OPTIONS: tuple[Option, ...] = (
    Option(
        "--config.file",
        "config_file",
        "YAML file naming the organizations to serve, each its own target at /probe; "
        "unset: the one organization of the admin key",
    ),
    Option(
        "--openai.admin-key-file",
        "admin_key_file",
        "file holding the admin key, re-read at each refresh",
    ),
    Option("--openai.base-url", "base_url", f"Admin API base URL (default {DEFAULT_BASE_URL})"),
    Option(
        "--web.listen-address",
        "web_listen_address",
        f"host:port to listen on (default :{DEFAULT_PORT})",
    ),
    Option("--web.telemetry-path", "web_telemetry_path", "path of the metrics (default /metrics)"),
    Option("--web.config.file", "web_config_file", "exporter-toolkit web config (TLS, basic auth)"),
    Option(
        "--web.allow-insecure-basic-auth",
        "web_allow_insecure_basic_auth",
        "accept basic_auth_users over plain HTTP, when TLS ends in front of the exporter",
        "bool",
    ),
    Option(
        "--cache.ttl", "cache_ttl", "how long a snapshot is served before a refresh (default 5m)"
    ),
    Option(
        "--cache.retry-interval",
        "cache_retry_interval",
        "wait before retrying a failed or partial refresh (default 1m, or the TTL if shorter)",
    ),
    Option(
        "--scrape.timeout-margin",
        "scrape_timeout_margin",
        "kept free of the scrape timeout for rendering (default 0.5s)",
    ),
    Option(
        "--scrape.default-timeout",
        "scrape_default_timeout",
        "scrape timeout assumed when Prometheus sends none (default 10s)",
    ),
    Option("--log.level", "log_level", "debug, info, warning or error (default info)"),
    Option("--log.format", "log_format", "text or json (default text)"),
    Option(
        "--openai.concurrency", "openai_concurrency", "key listings in flight at once (default 8)"
    ),
    Option(
        "--openai.request-timeout",
        "openai_request_timeout",
        "timeout of one upstream request (default 30s)",
    ),
    Option(
        "--openai.max-retries", "openai_max_retries", "retries of one upstream request (default 4)"
    ),
    Option(
        "--openai.refresh-timeout",
        "openai_refresh_timeout",
        "deadline of a whole refresh (default 2m)",
    ),
    Option(
        "--openai.include-archived",
        "openai_include_archived",
        "also list archived projects",
        "bool",
    ),
    Option(
        "--openai.project-include",
        "openai_project_include",
        "regex: keep only projects whose id or name matches",
    ),
    Option(
        "--openai.project-exclude",
        "openai_project_exclude",
        "regex: drop projects whose id or name matches",
    ),
    Option(
        "--metrics.owner-email",
        "metrics_owner_email",
        "add email labels: owner_email to openai_api_key_info, user_email to "
        "openai_user_info, invite_email to openai_invite_info",
        "bool",
    ),
    Option(
        "--usage.interval",
        "usage_interval",
        "how often the usage collector re-reads its window (default 5m)",
    ),
    Option(
        "--usage.lookback",
        "usage_lookback",
        "the trailing window of hourly usage buckets each poll re-reads (default 3h, at most 167h)",
    ),
    Option(
        "--usage.group-by",
        "usage_group_by",
        "comma-separated subset of project_id,api_key_id,model to break usage down by; a "
        "dimension left out has an empty label value (default all three)",
    ),
    Option(
        "--costs.interval",
        "costs_interval",
        "how often the costs and spend_limits collectors refresh (default 1h)",
    ),
    Option(
        "--costs.lookback",
        "costs_lookback",
        "the trailing window of daily cost buckets each poll re-reads (default 3d, at most 178d)",
    ),
    Option(
        "--audit.interval",
        "audit_interval",
        "how often the audit_logs collector reads the new audit log events (default 1m)",
    ),
    Option(
        "--audit.overlap",
        "audit_overlap",
        "how far below the newest audit event each poll re-reads, for events listed late "
        "(default 10m, at least 1s)",
    ),
    Option(
        "--audit.backfill",
        "audit_backfill",
        "audit log history read once at start for key scopes and last event times, never "
        "counted (default 7d)",
    ),
    Option(
        "--audit.backfill-max-pages",
        "audit_backfill_max_pages",
        "the start's backfill reads at most this many pages of 100 events, newest first "
        "(default 100)",
    ),
    Option(
        "--audit.log-events",
        "audit_log_events",
        "write each newly counted audit event to stdout as one JSON line (logger exporter.audit)",
        "bool",
    ),
    Option(
        "--audit.log-personal-data",
        "audit_log_personal_data",
        "add emails and IP addresses to those lines",
        "bool",
    ),
)
_BY_FIELD = {option.field: option for option in OPTIONS}


@dataclass(frozen=True)
class CollectorSwitch:
    """``--collector.<name>`` / ``--no-collector.<name>``, as node_exporter spells them."""

    name: str
    default: bool

    @property
    def flag(self) -> str:
        return f"--collector.{self.name}"

    @property
    def env(self) -> str:
        return f"{ENV_PREFIX}COLLECTOR_{self.name.upper()}"

    @property
    def dest(self) -> str:
        return f"collector__{self.name}"


COLLECTOR_SWITCHES: tuple[CollectorSwitch, ...] = tuple(
    CollectorSwitch(name, default) for name, default in COLLECTOR_DEFAULTS.items()
)
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class ConfigError(Exception):
    """One or more bad settings; each entry is one line for the user."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = tuple(problems)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="openai-key-exporter",
        description="Prometheus exporter for the credentials of an OpenAI organization "
        "(project and admin API keys, members, invites, certificates, service accounts). "
        "The admin key comes from OPENAI_ADMIN_KEY or OPENAI_ADMIN_KEY_FILE, never a flag; "
        "with --config.file, each organization's from its own admin_key_file.",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    parser.add_argument(
        "--check-config",
        action="store_true",
        help="validate the settings and the --config.file, then exit",
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        default=None,
        help="serve a simulated organization (no key needed)",
    )
    for option in OPTIONS:
        help_text = f"{option.help} [env {option.env}]"
        if option.kind == "bool":
            parser.add_argument(
                option.flag,
                dest=option.field,
                action=argparse.BooleanOptionalAction,
                default=None,
                help=help_text,
            )
        else:
            parser.add_argument(
                option.flag, dest=option.field, default=None, metavar="VALUE", help=help_text
            )
    for switch in COLLECTOR_SWITCHES:
        parser.add_argument(
            switch.flag,
            dest=switch.dest,
            action=argparse.BooleanOptionalAction,
            default=None,
            help=f"the {switch.name} collector (default {'on' if switch.default else 'off'}) "
            f"[env {switch.env}]",
        )
    return parser


def _enabled_collectors(
    values: Mapping[str, Any], environ: Mapping[str, str], problems: list[str]
) -> tuple[str, ...]:
    """Each collector's switch: its flag, else its variable, else its default."""
    enabled: list[str] = []
    for switch in COLLECTOR_SWITCHES:
        on = values.get(switch.dest)
        if on is None and switch.env in environ:
            text = environ[switch.env].strip().lower()
            if text in _TRUE | _FALSE:
                on = text in _TRUE
            else:
                problems.append(f"{switch.flag} ({switch.env}): must be true or false")
        if switch.default if on is None else on:
            enabled.append(switch.name)
    return tuple(enabled)


def _name_of(field: str) -> str:
    option = _BY_FIELD.get(field)
    if option is not None:
        return f"{option.flag} ({option.env})"
    if field == "admin_key":
        return "OPENAI_ADMIN_KEY"
    return f"--{field}"


def _unknown_environment(environ: Mapping[str, str]) -> list[str]:
    known = (
        {option.env for option in OPTIONS}
        | {switch.env for switch in COLLECTOR_SWITCHES}
        | {ENV_PREFIX + "DEMO"}
    )
    return [
        f"{name}: unknown setting (a typo?); known ones are listed by --help"
        for name in sorted(environ)
        if name.startswith(ENV_PREFIX) and name not in known
    ]


@dataclass(frozen=True)
class Configuration:
    """Everything the command line configures: the settings, and the organizations of
    ``--config.file`` when it names some (each organization's own settings are
    ``exporter.organizations.organization_settings(settings, organization)``)."""

    settings: Settings
    organizations: OrganizationsFile | None = None  # None: the one organization of settings


def load_configuration(flags: argparse.Namespace | Mapping[str, Any]) -> Configuration:
    """The settings and the organizations file they name, each read and checked once, or
    ``ConfigError`` listing every problem."""
    # Imported here: the organizations package builds on this module (Settings, ConfigError).
    from exporter.organizations.loading import load_organizations

    settings = _settings(flags)
    if settings.config_file is None:
        return Configuration(settings)
    return Configuration(settings, load_organizations(settings.config_file, demo=settings.demo))


def load_settings(flags: argparse.Namespace | Mapping[str, Any]) -> Settings:
    """Settings from flags over the environment, or ``ConfigError`` listing every problem;
    a ``--config.file`` is checked too (``load_configuration`` also returns what it holds)."""
    return load_configuration(flags).settings


def _settings(flags: argparse.Namespace | Mapping[str, Any]) -> Settings:
    values = vars(flags) if isinstance(flags, argparse.Namespace) else dict(flags)
    given = {
        field: value
        for field, value in values.items()
        if field in Settings.model_fields and value is not None
    }
    problems = _unknown_environment(os.environ)
    if "enabled_collectors" not in given:
        given["enabled_collectors"] = _enabled_collectors(values, os.environ, problems)
    try:
        settings = Settings(**given)
    except ValidationError as error:
        for detail in error.errors():
            location = [str(part) for part in detail["loc"] if part != "__root__"]
            message = str(detail["msg"]).removeprefix("Value error, ")
            problems.append(f"{_name_of(location[0])}: {message}" if location else message)
    if problems:
        raise ConfigError(problems)
    return settings
