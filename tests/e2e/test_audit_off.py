"""End to end, audit logging off: the organization's audit log refuses every read.

The same organization as test_end_to_end.py with `audit_logging = False`, on a stack of its
own: the simulator answers the audit log with a 403, as an organization that never enabled
it. The audit_logs collector fails alone: OpenAIAuditLogUnavailable (its `for:` of 1h
shortened to 1 s, like the other audit alerts) is the only alert about it, with
OpenAIExporterCollectorFailing leaving audit_logs out; `openai_up`, the other collectors
and their alerts go on as in the healthy stack; each failed refresh logs one line that
says what to do, with no secret.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio
from prometheus_client.parser import text_string_to_metric_families

from exporter.collectors.catalog import COLLECTOR_DEFAULTS
from exporter.simulator.app import SimulatorState, serve_simulator
from tests.alerts.rules import AUDIT_ALERTS, alerts
from tests.e2e.organization import Org, build_org, identity
from tests.e2e.stack import (
    FAKE_ADMIN_KEY,
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
AUDIT = "audit_logs"
UNAVAILABLE = "OpenAIAuditLogUnavailable"
COLLECTORS = {name for name, on in COLLECTOR_DEFAULTS.items() if on}


@dataclass
class AuditOff:
    org: Org
    stack: Stack

    @property
    def instance(self) -> str:
        return self.stack.exporter_url.removeprefix("http://")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def audit_off(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[AuditOff]:
    built = build_org(int(time.time()))
    built.org.audit_logging = False
    async with AsyncExitStack() as exit_stack:
        admin_api_url = await exit_stack.enter_async_context(
            serve_simulator(SimulatorState(org=built.org))
        )
        stack = await start_stack(
            exit_stack,
            tmp_path_factory.mktemp("e2e-audit-off"),
            SHORTENED,
            exporter_env=simulator_env(admin_api_url),
            exporter_args=FAST_REFRESH,
            history=built.history,
        )
        await built.play(stack, TIMEOUT)  # no audit case: nothing could count it
        yield AuditOff(built, stack)


async def test_audit_log_unavailable_is_the_only_alert_about_it(audit_off: AuditOff) -> None:
    """Every other alert fires as in the healthy stack; no audit event alert, and no
    OpenAIExporterCollectorFailing for audit_logs beside OpenAIAuditLogUnavailable."""
    expected = {
        (name, subject) for name, subject in audit_off.org.expected if name not in AUDIT_ALERTS
    }
    expected.add((UNAVAILABLE, AUDIT))

    async def firing() -> list[dict[str, Any]] | None:
        active = [a for a in await audit_off.stack.prometheus_alerts() if a["state"] == "firing"]
        return active if expected <= {identity(a["labels"]) for a in active} else None

    active = await poll(firing, "the alerts to fire", TIMEOUT, audit_off.stack.logs)
    assert {identity(a["labels"]) for a in active} == expected
    (alert,) = [a for a in active if a["labels"]["alertname"] == UNAVAILABLE]
    assert alert["labels"] == {
        "alertname": UNAVAILABLE,
        "severity": "warning",
        "job": SCRAPE_JOB,
        "instance": audit_off.instance,
        "collector": AUDIT,
    }
    assert alert["annotations"]["summary"] == alerts()[UNAVAILABLE].annotations["summary"]
    assert f"var-collector={AUDIT}" in alert["annotations"]["dashboard_url"]


async def test_the_other_collectors_and_openai_up_are_untouched(audit_off: AuditOff) -> None:
    async def failed() -> dict[str, float] | None:
        result = await audit_off.stack.query("openai_exporter_collector_success")
        success = {r["metric"]["collector"]: float(r["value"][1]) for r in result}
        return success if success.get(AUDIT) == 0 and len(success) == len(COLLECTORS) else None

    success = await poll(failed, f"{AUDIT} to fail", TIMEOUT, audit_off.stack.logs)
    assert success == {c: 0.0 if c == AUDIT else 1.0 for c in COLLECTORS}
    (up,) = await audit_off.stack.query("openai_up")
    assert up["value"][1] == "1"  # audit logging off is the organization's choice
    (keys,) = await audit_off.stack.query("sum(openai_project_api_keys)")
    assert float(keys["value"][1]) == len(audit_off.org.keys)
    errors = await audit_off.stack.query("openai_exporter_refresh_errors_total > 0")
    assert {e["metric"]["collector"] for e in errors} == {AUDIT}
    # Never read: no audit series at all.
    for family in (
        "openai_audit_events_total",
        "openai_audit_last_event_timestamp_seconds",
        "openai_api_key_scopes_info",
    ):
        assert await audit_off.stack.query(family) == [], family


async def failed_refreshes(stack: Stack) -> float:
    """The audit collector's failed refreshes, from the exporter itself."""
    async with stack.session.get(f"{stack.exporter_url}/metrics") as response:
        text = await response.text()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "openai_exporter_refresh_errors_total"
        and sample.labels.get("collector") == AUDIT
    )


async def test_each_failed_refresh_logs_one_line_saying_what_to_do(audit_off: AuditOff) -> None:
    log = next(p.log for p in audit_off.stack.processes if p.name == "exporter")

    async def steady() -> tuple[float, list[str]] | None:
        before = await failed_refreshes(audit_off.stack)
        text = log.read_text(encoding="utf-8", errors="replace")
        after = await failed_refreshes(audit_off.stack)
        # The exporter's lines about one collector end naming it.
        lines = [line for line in text.splitlines() if line.endswith(f"(collector {AUDIT})")]
        # Between two refreshes (none in the meantime), and more than one so far.
        return (after, lines) if before == after >= 2 else None

    failures, lines = await poll(steady, "failed audit refreshes", TIMEOUT, audit_off.stack.logs)
    assert len(lines) == failures, lines
    for line in lines:
        assert "audit logging" in line, line
        assert "--no-collector.audit_logs" in line, line
        assert "Audit logging is not enabled for this organization." in line, line
        assert FAKE_ADMIN_KEY not in line, line
    assert FAKE_ADMIN_KEY not in log.read_text(encoding="utf-8", errors="replace")
