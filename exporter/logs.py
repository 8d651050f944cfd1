"""Logging as text or JSON lines, with anything key-like scrubbed on the way out.

Diagnostics go to stderr as ``--log.format`` says. The audit events of
``--audit.log-events`` (logger ``exporter.audit``) go to stdout as one JSON object per
line whatever the format, so a log shipper can read them as they are.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime

AUDIT_LOGGER = "exporter.audit"
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


class AuditEventFormatter(logging.Formatter):
    """An audit event's line: the time it was logged, the logger and the event's fields
    (given as ``extra={"audit_event": {...}}``), one JSON object."""

    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, "audit_event", None)
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "logger": record.name,
            **(fields if isinstance(fields, dict) else {"message": record.getMessage()}),
        }
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
    # Audit events are data, not diagnostics: on stdout, whatever --log.level says (the
    # collector logs them only with --audit.log-events).
    events = logging.StreamHandler(sys.stdout)
    events.setFormatter(AuditEventFormatter())
    audit = logging.getLogger(AUDIT_LOGGER)
    audit.handlers[:] = [events]
    audit.setLevel(logging.INFO)
    audit.propagate = False
    # aiohttp's access log would add a line per scrape; keep it for debug only.
    logging.getLogger("aiohttp.access").setLevel(
        logging.DEBUG if level == "debug" else logging.WARNING
    )
