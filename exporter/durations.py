"""Durations as Prometheus writes them (``300``, ``5m``, ``1h30m``, ``500ms``), in seconds."""

from __future__ import annotations

import re

_UNIT_SECONDS = {
    "ms": 0.001,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "w": 604800.0,
    "y": 31536000.0,
}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)")
_PLAIN = re.compile(r"\d+(?:\.\d+)?")


def parse_duration(text: str) -> float:
    """Seconds in ``text``: a plain number of seconds or a Prometheus duration.

    Raises ``ValueError`` with a message fit for a configuration error.
    """
    value = text.strip()
    if _PLAIN.fullmatch(value):
        return float(value)
    position = 0
    total = 0.0
    for match in _PART.finditer(value):
        if match.start() != position:
            break
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        position = match.end()
    if position == 0 or position != len(value):
        raise ValueError(
            f"invalid duration {text!r}: "
            "use seconds (300) or a Prometheus duration (5m, 1h30m, 500ms)"
        )
    return total


def format_duration(seconds: float) -> str:
    """A short human form for help texts and logs: ``300`` -> ``5m``."""
    if seconds >= 60 and seconds % 60 == 0:
        minutes = int(seconds // 60)
        if minutes % 60 == 0:
            return f"{minutes // 60}h"
        return f"{minutes}m"
    if seconds == int(seconds):
        return f"{int(seconds)}s"
    return f"{seconds:g}s"
