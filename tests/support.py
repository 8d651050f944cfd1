"""Helpers shared by the test suites: simulations, exporter settings, scrapes and their
parsed samples."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from exporter.clock import Clocks
from exporter.config import Settings
from exporter.simulator.app import SimulatorState
from exporter.simulator.organization import Organization

FAKE_ADMIN_KEY = "sk-admin-test-fake"

# The metric names of the public contract (issues 2, 9 and 10), as a scrape exposes them.
CONTRACT = {
    "openai_up",
    "openai_project_info",
    "openai_project_api_keys",
    "openai_api_key_info",
    "openai_api_key_created_timestamp_seconds",
    "openai_api_key_last_used_timestamp_seconds",
    "openai_api_key_age_seconds",
    "openai_api_key_idle_seconds",
    "openai_api_key_never_used",
    "openai_exporter_refreshes_total",
    "openai_exporter_refresh_errors_total",
    "openai_exporter_api_requests_total",
    "openai_exporter_build_info",
    # Per collector (replacing the unlabelled last_success and refresh_duration).
    "openai_exporter_collector_success",
    "openai_exporter_collector_last_success_timestamp_seconds",
    "openai_exporter_collector_duration_seconds",
    # Collector admin_api_keys.
    "openai_admin_api_key_info",
    "openai_admin_api_key_created_timestamp_seconds",
    "openai_admin_api_key_last_used_timestamp_seconds",
    "openai_admin_api_key_expires_timestamp_seconds",
    "openai_admin_api_key_never_expires",
    "openai_admin_api_key_never_used",
    "openai_admin_api_key_age_seconds",
    "openai_admin_api_key_idle_seconds",
    "openai_exporter_admin_api_key_info",
    # Collector users.
    "openai_user_info",
    "openai_user_added_timestamp_seconds",
    "openai_user_api_key_last_used_timestamp_seconds",
    "openai_api_key_owner_in_organization",
    # Collector invites.
    "openai_invite_info",
    "openai_invite_created_timestamp_seconds",
    "openai_invite_expires_timestamp_seconds",
    # Collector certificates.
    "openai_certificate_info",
    "openai_certificate_not_before_timestamp_seconds",
    "openai_certificate_not_after_timestamp_seconds",
    # Collector service_accounts (off by default).
    "openai_service_account_info",
    "openai_service_account_created_timestamp_seconds",
    "openai_project_service_accounts",
    # Collector usage.
    "openai_usage_requests_total",
    "openai_usage_input_tokens_total",
    "openai_usage_cached_input_tokens_total",
    "openai_usage_output_tokens_total",
    "openai_usage_images_total",
    "openai_usage_characters_total",
    "openai_usage_audio_seconds_total",
    # Collector costs.
    "openai_cost_usd_total",
    "openai_project_spend_month_to_date_usd",
    "openai_organization_spend_month_to_date_usd",
    # Collector spend_limits.
    "openai_organization_spend_limit_usd",
    "openai_project_spend_limit_usd",
    "openai_organization_spend_limit_enforcing",
    "openai_project_spend_limit_enforcing",
    "openai_organization_spend_alert_threshold_usd",
    "openai_project_spend_alert_threshold_usd",
    # Collector rate_limits (off by default).
    "openai_project_rate_limit_requests_per_minute",
    "openai_project_rate_limit_tokens_per_minute",
    # Collector audit_logs (issue 11).
    "openai_audit_events_total",
    "openai_audit_last_event_timestamp_seconds",
    "openai_api_key_scopes_info",
}
DAY = 86400
SCRAPE_TIMEOUT = 10.0  # what the test scrapes announce, as Prometheus does


@dataclass
class Simulation:
    state: SimulatorState
    base_url: str

    @property
    def org(self) -> Organization:
        return self.state.org

    def requests_to(self, endpoint: str) -> list[dict[str, str]]:
        return [r.query for r in self.state.requests if r.endpoint == endpoint]


# The credential collectors: what a test of the inventory runs unless it asks for more
# (usage, costs and spend limits, also on by default, make requests of their own that
# would blur the inventory's request counts and failure lines; they have their tests).
INVENTORY_COLLECTORS = ("api_keys", "admin_api_keys", "users", "invites", "certificates")


def exporter_settings(base_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "admin_key": SecretStr(FAKE_ADMIN_KEY),
        "base_url": base_url,
        "enabled_collectors": INVENTORY_COLLECTORS,
    }
    values.update(overrides)
    return Settings(**values)


@dataclass
class FakeTime:
    """Monotonic time that tests move; sleeps are recorded and return at once. With
    ``wall_now`` set, the wall clock is fake too (``advance`` moves both)."""

    monotonic_now: float = 1000.0
    sleeps: list[float] = field(default_factory=list)
    wall_now: float | None = None

    def monotonic(self) -> float:
        return self.monotonic_now

    def wall(self) -> float:
        return time.time() if self.wall_now is None else self.wall_now

    def advance(self, seconds: float) -> None:
        self.monotonic_now += seconds
        if self.wall_now is not None:
            self.wall_now += seconds

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    def clocks(self) -> Clocks:
        return Clocks(wall=self.wall, monotonic=self.monotonic, sleep=self.sleep)


ExporterFactory = Callable[..., Awaitable[TestClient[Any, Any]]]


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse_samples(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def scrape_text(
    client: TestClient[Any, Any],
    path: str = "/metrics",
    *,
    budget: float = SCRAPE_TIMEOUT,
    headers: Mapping[str, str] | None = None,
) -> str:
    """One scrape of ``path`` as Prometheus makes it (announcing ``budget`` seconds); it
    must answer 200.

    Through the client's session rather than ``client.get``, which keeps every
    response until the test ends and would look like a leak in the endurance runs.
    """
    async with client.session.get(
        client.make_url(path),
        headers={"X-Prometheus-Scrape-Timeout-Seconds": f"{budget:g}", **(headers or {})},
    ) as response:
        body = await response.text()
        assert response.status == 200, body
        return body


async def scrape(
    client: TestClient[Any, Any],
    path: str = "/metrics",
    *,
    budget: float = SCRAPE_TIMEOUT,
    headers: Mapping[str, str] | None = None,
) -> Samples:
    """``scrape_text``, parsed."""
    return parse_samples(await scrape_text(client, path, budget=budget, headers=headers))


def sample(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def series(samples: Samples, name: str) -> list[dict[str, str]]:
    return [dict(labels) for (metric, labels) in samples if metric == name]


def assert_promtool_accepts(exposition: str) -> None:
    """``promtool check metrics`` (the real one) finds nothing to say about ``exposition``."""
    lint = subprocess.run(
        ["promtool", "check", "metrics"],
        input=exposition,
        capture_output=True,
        text=True,
        check=False,
    )
    assert lint.returncode == 0, lint.stderr
    assert lint.stderr.strip() == ""
