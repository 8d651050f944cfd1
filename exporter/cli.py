"""The command line: parse, validate, then serve until SIGTERM or SIGINT."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

from aiohttp import web

from exporter import __version__
from exporter.app import create_app
from exporter.config import ConfigError, Settings, build_parser, load_settings
from exporter.logs import configure_logging, redact
from exporter.webconfig import WebConfig, WebConfigError, load_web_config

log = logging.getLogger("exporter")

EXIT_CONFIG = 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    flags = parser.parse_args(argv)  # exits 2 itself on an unknown flag
    if flags.version:
        print(f"openai-key-exporter {__version__}")
        return 0
    try:
        settings = load_settings(flags)
    except ConfigError as error:
        for problem in error.problems:
            # A key pasted into the wrong setting must not be echoed back.
            print(f"openai-key-exporter: {redact(problem)}", file=sys.stderr)
        return EXIT_CONFIG
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
        print("openai-key-exporter: configuration OK")
        return 0
    configure_logging(settings.log_level, settings.log_format)
    serve(settings, web_config)
    return 0


def serve(settings: Settings, web_config: WebConfig | None = None) -> None:
    address = settings.listen_address
    web_config = web_config or WebConfig()
    log.info(
        "openai-key-exporter %s listening on %s (%s, %s), metrics at %s",
        __version__,
        address,
        "https" if web_config.tls else "http",
        web_config.describe(),
        settings.web_telemetry_path,
    )
    web.run_app(
        create_app(settings, web_config=web_config),
        host=address.host,
        port=address.port,
        ssl_context=web_config.ssl_context,
        print=None,
        shutdown_timeout=5.0,
        access_log=logging.getLogger("aiohttp.access"),
    )


if __name__ == "__main__":
    sys.exit(main())
