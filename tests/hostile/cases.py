"""The upstream faults of the hostile suite, with what the exporter must make of each.

One table, shared by the fault matrix, the random-mix endurance run and the secret
checks, so a fault added here is exercised everywhere.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient
from pydantic import SecretStr

from exporter.simulator.faults import Fault
from exporter.upstream.errors import ErrorReason
from exporter.web.app import CACHE
from tests.support import DAY, Samples, Simulation, series

# Never a real key: the point is that this string shows up nowhere.
CANARY = "sk-admin-CANARY-hostile"
CANARY_MARK = "CANARY"

MAX_RETRIES = 2
REQUEST_TIMEOUT = 0.25  # seconds; the `slow` fault answers after SLOW_DELAY
SLOW_DELAY = 2.0
TTL = 300.0
RETRY_INTERVAL = 60.0
BIG_PROJECT_KEYS = 150  # two pages: the cursor faults need a second page to bend


@dataclass(frozen=True)
class FaultCase:
    """One fault and the exporter's duty: its reason, retries and the waits between them."""

    id: str
    fault: Fault
    reason: ErrorReason
    retried: bool
    # The waits before each retry, when the server states them (Retry-After,
    # retry-after-ms, capped); None: the exponential backoff with jitter.
    waits: float | None = None
    # Requests one failing listing costs when not retried: a repeating cursor is
    # noticed on the second page.
    unretried_requests: int = 1

    def requests_per_failure(self) -> int:
        return MAX_RETRIES + 1 if self.retried else self.unretried_requests


FAULT_CASES: tuple[FaultCase, ...] = (
    FaultCase("401", Fault("status", status=401), "auth", retried=False),
    FaultCase("403", Fault("status", status=403), "auth", retried=False),
    FaultCase(
        "429-retry-after",
        Fault("status", status=429, retry_after="7"),
        "rate_limited",
        retried=True,
        waits=7.0,
    ),
    FaultCase(
        "429-retry-after-ms",
        Fault("status", status=429, retry_after_ms=2500),
        "rate_limited",
        retried=True,
        waits=2.5,
    ),
    FaultCase(
        "429-retry-after-too-long",
        Fault("status", status=429, retry_after="86400"),
        "rate_limited",
        retried=True,
        waits=60.0,  # RetryPolicy.max_retry_after: one header cannot stall a refresh
    ),
    FaultCase("429-bare", Fault("status", status=429), "rate_limited", retried=True),
    FaultCase("500", Fault("status", status=500), "server_error", retried=True),
    FaultCase("502", Fault("status", status=502), "server_error", retried=True),
    FaultCase(
        "503-retry-after",
        Fault("status", status=503, retry_after="3"),
        "server_error",
        retried=True,
        waits=3.0,
    ),
    FaultCase("slow", Fault("slow", delay=SLOW_DELAY), "timeout", retried=True),
    FaultCase("reset", Fault("reset"), "network", retried=True),
    FaultCase("truncated", Fault("truncated"), "network", retried=True),
    FaultCase("malformed-json", Fault("malformed_json"), "bad_response", retried=False),
    FaultCase("wrong-shape", Fault("wrong_shape"), "bad_response", retried=False),
    FaultCase(
        "repeat-cursor",
        Fault("repeat_cursor"),
        "bad_response",
        retried=False,
        unretried_requests=2,
    ),
    FaultCase("oversized-page", Fault("oversized_page"), "bad_response", retried=False),
)


def hostile_settings() -> dict[str, Any]:
    """Settings overrides of every hostile exporter: the canary key, short retries."""
    return {
        "admin_key": SecretStr(CANARY),
        "openai_max_retries": MAX_RETRIES,
        "openai_request_timeout": REQUEST_TIMEOUT,
        "cache_ttl": TTL,
        "cache_retry_interval": RETRY_INTERVAL,
    }


def seed_organization(simulation: Simulation) -> dict[str, str]:
    """Three projects, one of them over two pages of keys; returns their ids by role."""
    now = int(time.time())
    ids = {}
    for role, count in (("small", 3), ("big", BIG_PROJECT_KEYS), ("other", 2)):
        project = simulation.org.add_project(f"{role} project")
        ids[role] = project.id
        for index in range(count):
            last_used = None if index % 3 == 0 else now - DAY
            simulation.org.add_key(
                project.id,
                f"{role} key {index}",
                created_at=now - (index + 2) * DAY,
                last_used_at=last_used,
            )
    return ids


# Families that carry the inventory and do not move with the wall clock.
INVENTORY_FAMILIES = (
    "openai_project_info",
    "openai_project_api_keys",
    "openai_api_key_info",
    "openai_api_key_created_timestamp_seconds",
    "openai_api_key_last_used_timestamp_seconds",
    "openai_api_key_never_used",
)


def inventory_of(samples: Samples) -> Samples:
    """The samples that describe the organization, for before/after comparison."""
    return {key: value for key, value in samples.items() if key[0] in INVENTORY_FAMILIES}


def key_ids(samples: Samples) -> set[tuple[str, str]]:
    return {
        (labels["project_id"], labels["api_key_id"])
        for labels in series(samples, "openai_api_key_info")
    }


def app_of(client: TestClient[Any, Any]) -> web.Application:
    app = client.app
    assert isinstance(app, web.Application)
    return app


async def settle(client: TestClient[Any, Any]) -> None:
    """Wait for a refresh in flight (if any) to finish."""
    cache = app_of(client)[CACHE]
    running = [c.start_refresh() for c in cache.caches if c.refreshing]
    await asyncio.gather(*running)  # the running ones: start_refresh never starts a second
