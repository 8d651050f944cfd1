"""Spend limits, spend alerts and rate limits of a simulated organization and its projects."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

EnforcementStatus = Literal["inactive", "enforcing"]


@dataclass(frozen=True, slots=True)
class SimSpendLimit:
    """A hard monthly spend limit in cents (USD); `enforcing` once it is reached."""

    threshold_amount: int  # cents
    enforcing: bool = False

    @property
    def status(self) -> EnforcementStatus:
        return "enforcing" if self.enforcing else "inactive"


@dataclass(frozen=True, slots=True)
class SimSpendAlert:
    """A monthly spend alert in cents (USD), mailed to `recipients`."""

    id: str
    threshold_amount: int  # cents
    recipients: tuple[str, ...] = ("finance@example.com",)
    subject_prefix: str | None = None


@dataclass(frozen=True, slots=True)
class SimRateLimit:
    """A project's rate limit for one model (`id` is `rl-<model>`, as in the spec)."""

    model: str
    max_requests_per_1_minute: int
    max_tokens_per_1_minute: int
    max_images_per_1_minute: int | None = None
    max_audio_megabytes_per_1_minute: int | None = None
    max_requests_per_1_day: int | None = None
    batch_1_day_max_input_tokens: int | None = None

    @property
    def id(self) -> str:
        return f"rl-{self.model}"


# What every project starts with (tier-5-like numbers; the optional fields where they apply).
DEFAULT_RATE_LIMITS: tuple[SimRateLimit, ...] = (
    SimRateLimit("gpt-4o", 10_000, 30_000_000, batch_1_day_max_input_tokens=5_000_000_000),
    SimRateLimit("gpt-4o-mini", 30_000, 150_000_000, batch_1_day_max_input_tokens=15_000_000_000),
    SimRateLimit("o3-mini", 30_000, 150_000_000, batch_1_day_max_input_tokens=10_000_000_000),
    SimRateLimit("gpt-4.1", 10_000, 30_000_000, batch_1_day_max_input_tokens=5_000_000_000),
    SimRateLimit("text-embedding-3-small", 10_000, 10_000_000),
    SimRateLimit("text-embedding-3-large", 10_000, 10_000_000),
    SimRateLimit("omni-moderation-latest", 1_000, 150_000, max_requests_per_1_day=500_000),
    SimRateLimit("gpt-image-1", 250, 8_000_000, max_images_per_1_minute=250),
    SimRateLimit("dall-e-3", 500, 150_000, max_images_per_1_minute=10),
    SimRateLimit("tts-1", 500, 150_000),
    SimRateLimit("whisper-1", 500, 150_000, max_audio_megabytes_per_1_minute=500),
)
