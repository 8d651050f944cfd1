"""When to retry an upstream request, and how long to wait first.

Follows the official OpenAI SDK: retry 408, 409, 429 and 5xx, network errors and
timeouts; exponential backoff from 0.5 s to 8 s with jitter; honour ``Retry-After``
(seconds or an HTTP date) and ``retry-after-ms``, capped so one header cannot stall
a refresh.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

RETRYABLE_STATUSES = frozenset({408, 409, 429})


def is_retryable_status(status: int) -> bool:
    return status in RETRYABLE_STATUSES or status >= 500


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int
    initial_backoff: float = 0.5
    max_backoff: float = 8.0
    max_retry_after: float = 60.0

    def backoff(self, retry_number: int, rng: random.Random) -> float:
        """Seconds before retry ``retry_number`` (0-based), with up to 25 % jitter off."""
        base = min(self.max_backoff, self.initial_backoff * 2.0**retry_number)
        return base * (1 - 0.25 * rng.random())

    def delay(
        self, retry_number: int, headers: Mapping[str, str], now: float, rng: random.Random
    ) -> float:
        """The server's wish when it states one (capped), otherwise the backoff."""
        asked = retry_after_seconds(headers, now)
        if asked is not None:
            return min(asked, self.max_retry_after)
        return self.backoff(retry_number, rng)


def retry_after_seconds(headers: Mapping[str, str], now: float) -> float | None:
    """Seconds the server asks us to wait, from ``retry-after-ms`` or ``Retry-After``."""
    milliseconds = headers.get("retry-after-ms")
    if milliseconds is not None:
        try:
            value = float(milliseconds) / 1000
        except ValueError:
            value = -1.0
        if value >= 0:
            return value
    text = headers.get("retry-after")
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        try:
            value = parsedate_to_datetime(text).timestamp() - now
        except (TypeError, ValueError):
            return None
    return max(0.0, value)
