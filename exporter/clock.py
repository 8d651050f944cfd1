"""The clocks, in one place: production uses the real ones, tests inject their own.

Nothing in refresh, cache or client reads ``time`` directly; each takes a ``Clocks``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class Clocks:
    """``wall`` for timestamps (unix seconds), ``monotonic`` for durations and TTLs,
    ``sleep`` for retry waits."""

    wall: Callable[[], float] = time.time
    monotonic: Callable[[], float] = time.monotonic
    sleep: Sleep = asyncio.sleep
