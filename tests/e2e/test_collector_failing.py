"""End to end, one collector failing: the invites endpoint answers 500 for good.

The same organization as test_end_to_end.py, on a stack of its own (the failure makes
`openai_up` 0, which the healthy stack asserts is 1). The exporter refreshes every 2 s
(stack.FAST_REFRESH, every collector on by default) and retries once, so a failure shows
within seconds. The fault is armed only once every
collector has completed a refresh, so the invites collector has good data to keep.
OpenAIExporterCollectorFailing (its `for:` shortened to 1 s like the key alerts) must fire
for `collector="invites"` alone, while the scrape, the other collectors and every
credential alert go on as in the healthy stack.
"""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio

from exporter.collectors.catalog import COLLECTOR_DEFAULTS
from exporter.simulator.app import SimulatorState, serve_simulator
from exporter.simulator.faults import Fault, ListEndpoint
from tests.alerts.rules import alerts
from tests.e2e.organization import Org, build_org, identity
from tests.e2e.stack import (
    FAST_REFRESH,
    SCRAPE_JOB,
    SHORTENED,
    Stack,
    poll,
    simulator_env,
    start_stack,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

TIMEOUT = 60.0
FAILING: ListEndpoint = "invites"
# The collectors on by default (service_accounts and rate_limits are off).
COLLECTORS = {name for name, on in COLLECTOR_DEFAULTS.items() if on}
INVITES = 4  # tests/e2e/organization.py::_add_invites


@dataclass
class Failing:
    org: Org
    stack: Stack
    armed_at: float  # when the fault was armed (this machine's clock, as Prometheus's)

    @property
    def instance(self) -> str:
        return self.stack.exporter_url.removeprefix("http://")


async def success_by_collector(stack: Stack) -> dict[str, float]:
    result = await stack.query("openai_exporter_collector_success")
    return {r["metric"]["collector"]: float(r["value"][1]) for r in result}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def failing(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Failing]:
    built = build_org(int(time.time()))
    state = SimulatorState(org=built.org)
    async with AsyncExitStack() as exit_stack:
        admin_api_url = await exit_stack.enter_async_context(serve_simulator(state))
        stack = await start_stack(
            exit_stack,
            tmp_path_factory.mktemp("e2e-failing"),
            SHORTENED,
            exporter_env=simulator_env(admin_api_url),
            exporter_args=[*FAST_REFRESH, "--openai.max-retries=1"],
            history=built.history,
        )
        await built.play(stack, TIMEOUT)

        async def all_refreshed() -> bool | None:
            every = await success_by_collector(stack) == dict.fromkeys(COLLECTORS, 1.0)
            invites = await stack.query("count(openai_invite_info)")
            return (every and bool(invites) and float(invites[0]["value"][1]) == INVITES) or None

        await poll(all_refreshed, "every collector to refresh once", TIMEOUT, stack.logs)
        armed_at = time.time()
        state.faults.add(Fault("status", status=500), endpoint=FAILING, times=None)
        yield Failing(built, stack, armed_at)


async def test_collector_failing_fires_for_the_failing_collector_only(failing: Failing) -> None:
    async def fired() -> list[dict[str, Any]] | None:
        found = [
            a
            for a in await failing.stack.prometheus_alerts()
            if a["labels"]["alertname"] == "OpenAIExporterCollectorFailing"
        ]
        return found if [a["state"] for a in found] == ["firing"] else None

    (alert,) = await poll(fired, "OpenAIExporterCollectorFailing", TIMEOUT, failing.stack.logs)
    assert alert["labels"] == {
        "alertname": "OpenAIExporterCollectorFailing",
        "severity": "warning",
        "job": SCRAPE_JOB,
        "instance": failing.instance,
        "collector": FAILING,
    }
    shipped = alerts()["OpenAIExporterCollectorFailing"].annotations
    assert alert["annotations"]["summary"] == shipped["summary"]
    assert f'Collector "{FAILING}"' in alert["annotations"]["description"]
    assert f"var-collector={FAILING}" in alert["annotations"]["dashboard_url"]
    instance = urllib.parse.quote(failing.instance, safe="")
    assert f"var-instance={instance}" in alert["annotations"]["dashboard_url"]


async def test_the_other_collectors_keep_serving(failing: Failing) -> None:
    async def failed() -> dict[str, float] | None:
        success = await success_by_collector(failing.stack)
        return success if success.get(FAILING) == 0 else None

    success = await poll(failed, f"{FAILING} to fail", TIMEOUT, failing.stack.logs)
    assert success == {c: 0.0 if c == FAILING else 1.0 for c in COLLECTORS}
    (up,) = await failing.stack.query("openai_up")
    assert up["value"][1] == "0"
    (scrape,) = await failing.stack.query(f'up{{job="{SCRAPE_JOB}"}}')
    assert scrape["value"][1] == "1"  # a failed upstream is openai_up 0 with a 200

    # The failing collector keeps its last good rows; the reason is counted for it alone.
    (invites,) = await failing.stack.query("count(openai_invite_info)")
    assert float(invites["value"][1]) == INVITES
    errors = await failing.stack.query("openai_exporter_refresh_errors_total > 0")
    assert {(e["metric"]["collector"], e["metric"]["reason"]) for e in errors} == {
        (FAILING, "server_error")
    }

    # The other collectors go on refreshing after the fault; the failing one did not.
    async def refreshed_since() -> bool | None:
        since = await failing.stack.query(
            f"openai_exporter_collector_last_success_timestamp_seconds > {failing.armed_at}"
        )
        return {s["metric"]["collector"] for s in since} == COLLECTORS - {FAILING} or None

    await poll(refreshed_since, "the others to refresh", TIMEOUT, failing.stack.logs)


async def test_every_other_alert_fires_as_in_the_healthy_stack(failing: Failing) -> None:
    """Nothing else changes: the same key, admin key, owner and certificate alerts fire,
    and OpenAIExporterCollectorFailing is the only exporter alert."""
    expected = failing.org.expected | {("OpenAIExporterCollectorFailing", FAILING)}

    async def firing() -> set[tuple[str, str]] | None:
        seen = {
            identity(a["labels"])
            for a in await failing.stack.prometheus_alerts()
            if a["state"] == "firing"
        }
        return seen if expected <= seen else None

    assert await poll(firing, "every alert", TIMEOUT, failing.stack.logs) == expected


async def test_exporter_down_stays_silent(failing: Failing) -> None:
    """The exporter answers every scrape: a failing collector is not a down exporter."""
    assert await failing.stack.query(alerts()["OpenAIExporterDown"].expr) == []
    assert await failing.stack.query('ALERTS{alertname="OpenAIExporterDown"}') == []


async def test_collector_failing_reaches_alertmanager(failing: Failing) -> None:
    async def received() -> list[dict[str, Any]] | None:
        got = [
            a
            for a in await failing.stack.alertmanager_alerts()
            if a["labels"]["alertname"] == "OpenAIExporterCollectorFailing"
        ]
        return got or None

    (alert,) = await poll(received, "the alert in Alertmanager", TIMEOUT, failing.stack.logs)
    assert alert["labels"]["collector"] == FAILING
    assert alert["labels"]["severity"] == "warning"
    assert [r["name"] for r in alert["receivers"]] == ["openai-warning"]
    assert alert["status"]["state"] == "active"
