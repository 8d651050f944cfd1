"""Logging as text or JSON lines, with anything key-like scrubbed on the way out."""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime

_KEY_LIKE = re.compile(r"(?<![A-Za-z0-9])sk-[A-Za-z0-9*_.\-]{4,}")


def redact(text: str) -> str:
    """``text`` with anything shaped like an OpenAI key (``sk-...``) blanked out."""
    return _KEY_LIKE.sub("sk-[redacted]", text)


class RedactingFormatter(logging.Formatter):
    """Second line of defence: the code never logs a key, and this scrubs one anyway."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return redact(json.dumps(entry, ensure_ascii=False))


def configure_logging(level: str, log_format: str) -> None:
    """Called once by the command line; the app itself never touches logging setup."""
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiohttp's access log would add a line per scrape; keep it for debug only.
    logging.getLogger("aiohttp.access").setLevel(
        logging.DEBUG if level == "debug" else logging.WARNING
    )
