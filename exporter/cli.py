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
    if flags.check_config:
        print("openai-key-exporter: configuration OK")
        return 0
    configure_logging(settings.log_level, settings.log_format)
    serve(settings)
    return 0


def serve(settings: Settings) -> None:
    address = settings.listen_address
    log.info(
        "openai-key-exporter %s listening on %s, metrics at %s",
        __version__,
        address,
        settings.web_telemetry_path,
    )
    web.run_app(
        create_app(settings),
        host=address.host,
        port=address.port,
        print=None,
        shutdown_timeout=5.0,
        access_log=logging.getLogger("aiohttp.access"),
    )


if __name__ == "__main__":
    sys.exit(main())
