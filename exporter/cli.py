"""The command line: parse, validate, then serve until SIGTERM or SIGINT."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from exporter import __version__
from exporter.config import ConfigError, Settings, build_parser, load_configuration
from exporter.logs import configure_logging, redact
from exporter.organizations import OrganizationsFile
from exporter.web.app import create_app
from exporter.webconfig import WebConfig, WebConfigError, load_web_config

log = logging.getLogger("exporter")

EXIT_CONFIG = 2
EXIT_LISTEN = 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    flags = parser.parse_args(argv)  # exits 2 itself on an unknown flag
    if flags.version:
        print(f"openai-key-exporter {__version__}")
        return 0
    try:
        configuration = load_configuration(flags)
    except ConfigError as error:
        for problem in error.problems:
            # A key pasted into the wrong setting must not be echoed back.
            print(f"openai-key-exporter: {redact(problem)}", file=sys.stderr)
        return EXIT_CONFIG
    settings = configuration.settings
    try:
        # Read and checked in full now (certificates and keys loaded, hashes parsed), so
        # a bad file stops the start, and --check-config sees it too.
        web_config = load_web_config(
            settings.web_config_file,
            allow_insecure_basic_auth=settings.web_allow_insecure_basic_auth,
        )
    except WebConfigError as error:
        for problem in error.problems:
            print(f"openai-key-exporter: {redact(problem)}", file=sys.stderr)
        return EXIT_CONFIG
    if flags.check_config:
        organizations = configuration.organizations
        named = f" (organizations: {', '.join(organizations.names)})" if organizations else ""
        print(f"openai-key-exporter: configuration OK{named}")
        return 0
    configure_logging(settings.log_level, settings.log_format)
    return serve(settings, web_config, configuration.organizations)


def serve(
    settings: Settings,
    web_config: WebConfig | None = None,
    organizations: OrganizationsFile | None = None,
) -> int:
    """Serves until SIGTERM or SIGINT; the exit status (1 when it cannot listen)."""
    address = settings.listen_address
    web_config = web_config or WebConfig()
    hush_malformed_requests()
    log.info(
        "openai-key-exporter %s listening on %s (%s, %s), metrics at %s",
        __version__,
        address,
        "https" if web_config.tls else "http",
        web_config.describe(),
        settings.web_telemetry_path,
    )
    if organizations is None:  # else each organization's are its own (the app logs them)
        log.info("collectors enabled: %s", ", ".join(settings.enabled_collectors) or "none")
    try:
        web.run_app(
            create_app(settings, web_config=web_config, organizations=organizations),
            host=address.host,
            port=address.port,
            ssl_context=web_config.ssl_context,
            print=None,
            shutdown_timeout=5.0,
            access_log=logging.getLogger("aiohttp.access"),
        )
    except OSError as error:  # address in use, no such interface, port below 1024...
        log.error("cannot listen on %s: %s", address, error.strerror or error)
        return EXIT_LISTEN
    return 0


class _MalformedRequests(logging.Filter):
    """aiohttp logs every unparsable request at ERROR with a traceback and a snippet of
    the raw bytes, which may hold a header's credentials. Anyone who can connect could
    fill the log that way. Such a request already got its 400: say so in one line at
    debug level, without the bytes, and nothing otherwise."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if not isinstance(error, HttpProcessingError):
            return True
        if not log.isEnabledFor(logging.DEBUG):
            return False
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        record.msg = "refused a malformed request with HTTP %s (%s)"
        record.args = (error.code, type(error).__name__)
        record.exc_info = None
        record.exc_text = None
        return True


_HUSH = _MalformedRequests()


def hush_malformed_requests() -> None:
    """Installs the filter on aiohttp's server log (once, however often called)."""
    server_log = logging.getLogger("aiohttp.server")
    if _HUSH not in server_log.filters:
        server_log.addFilter(_HUSH)


if __name__ == "__main__":
    sys.exit(main())
