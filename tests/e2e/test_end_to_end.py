"""End to end on loopback: simulator -> exporter -> Prometheus (shipped rules) -> Alertmanager.

The simulated organization (tests/e2e/organization.py) holds one subject per key, admin
key, owner, certificate, usage and spend alert, plus subjects just short of each threshold
that must not alert; its audit events (tests/e2e/audit.py) are recorded during the run,
one case per audit alert. The exporter runs every collector on by default, refreshing
every 2 s (stack.FAST_REFRESH). A real Prometheus (1 s scrape and evaluation) loads the shipped
rules, with only the `for:` of those alerts shortened, and the week of the spike alert's
baseline backfilled (organization.py); a real Alertmanager runs the example configuration
with its notification integrations removed. Everything is polled with a bound; nothing
sleeps a fixed time.
"""

from __future__ import annotations

import re
import time
import urllib.parse
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import promql_parser
import pytest
import pytest_asyncio

from exporter.simulator.app import SimulatorState, serve_simulator
from tests.alerts.rules import (
    AUDIT_ALERTS,
    CREDENTIAL_ALERTS,
    EXPORTER_ALERTS,
    KEY_ALERTS,
    PROJECT_ALERTS,
    USAGE_ALERTS,
    alerts,
    duration_seconds,
    load_rules,
)
from tests.dashboards.grafana import (
    Query,
    dashboards,
    grafana_query_result_line,
    project_regex,
    queries,
    runnable,
    variables,
)
from tests.e2e.audit import AUDIT_THRESHOLD_ALERTS, BURST_THRESHOLD, LOGIN_FAILURE_THRESHOLD
from tests.e2e.organization import DAY, Org, build_org, identity
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

# Dashboard queries that return nothing for this organization, with the reason.
# None so far: every panel has data here.
EMPTY_BY_DESIGN: dict[str, str] = {}
# How long Prometheus and Alertmanager may take for what is polled below; the whole run
# normally takes about 25 s.
TIMEOUT = 60.0
# The audit alert about the exporter: silent while the audit log is read, as the exporter
# alerts are (test_audit_off.py makes it fire).
AUDIT_UNAVAILABLE = "OpenAIAuditLogUnavailable"
SILENT_ALERTS = (*EXPORTER_ALERTS, AUDIT_UNAVAILABLE)


@dataclass
class EndToEnd:
    org: Org
    stack: Stack

    def expected_labels(self, alertname: str, subject: str) -> dict[str, str]:
        instance = self.stack.exporter_url.removeprefix("http://")
        return self.org.expected_labels(alertname, subject, instance)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def e2e(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[EndToEnd]:
    built = build_org(int(time.time()))
    async with AsyncExitStack() as exit_stack:
        admin_api_url = await exit_stack.enter_async_context(
            serve_simulator(SimulatorState(org=built.org))
        )
        stack = await start_stack(
            exit_stack,
            tmp_path_factory.mktemp("e2e"),
            SHORTENED,
            exporter_env=simulator_env(admin_api_url),
            exporter_args=FAST_REFRESH,
            history=built.history,
        )
        await built.play(stack, TIMEOUT)
        yield EndToEnd(built, stack)


# ----------------------------------------------------------------------- scrape


async def test_target_is_up_and_the_exporter_refreshed(e2e: EndToEnd) -> None:
    async def healthy() -> list[dict[str, Any]] | None:
        result = await e2e.stack.query(f'up{{job="{SCRAPE_JOB}"}} == 1 and on () openai_up == 1')
        return result or None

    await poll(healthy, "up and openai_up at 1", TIMEOUT, e2e.stack.logs)
    (keys,) = await e2e.stack.query("sum(openai_project_api_keys)")
    assert float(keys["value"][1]) == len(e2e.org.keys)


async def test_prometheus_runs_the_shipped_rules(e2e: EndToEnd) -> None:
    """Same groups, names and expressions as shipped; only the key alerts' `for:` shorter."""
    body = await e2e.stack.get_json(f"{e2e.stack.prometheus_url}/api/v1/rules")
    loaded = {
        rule["name"]: (group["name"], rule)
        for group in body["data"]["groups"]
        for rule in group["rules"]
    }
    shipped = load_rules()
    assert set(loaded) == {rule.name for rule in shipped}
    for rule in shipped:
        group, running = loaded[rule.name]
        assert group == rule.group
        as_shipped = promql_parser.parse(rule.expr).prettify()
        assert promql_parser.parse(running["query"]).prettify() == as_shipped
        if rule.is_alert:
            for_ = SHORTENED.get(rule.name, rule.for_ or "0s")
            assert running["duration"] == duration_seconds(for_)
            assert running["labels"] == rule.labels
            assert running["annotations"] == rule.annotations


# ------------------------------------------------------------------- dashboards


@pytest.mark.parametrize("query", [pytest.param(q, id=q.id) for q in queries()])
async def test_dashboard_query_returns_data(e2e: EndToEnd, query: Query) -> None:
    expr = runnable(query)

    async def data() -> list[dict[str, Any]] | None:
        return await e2e.stack.query(expr) or None

    if query.id in EMPTY_BY_DESIGN:
        assert await e2e.stack.query(expr) == [], EMPTY_BY_DESIGN[query.id]
        return
    result = await poll(data, f"data from {query.id}: {expr}", TIMEOUT, e2e.stack.logs)
    assert result


async def test_empty_by_design_names_real_queries() -> None:
    assert set(EMPTY_BY_DESIGN) <= {query.id for query in queries()}


def panel_query(panel: str, ref_id: str = "A") -> str:
    (query,) = [q for q in queries() if q.panel == panel and q.ref_id == ref_id]
    return runnable(query)


async def test_stat_panels_count_the_organization(e2e: EndToEnd) -> None:
    async def value(panel: str) -> float:
        async def one() -> float | None:
            result = await e2e.stack.query(panel_query(panel))
            return float(result[0]["value"][1]) if result else None

        return await poll(one, panel, TIMEOUT, e2e.stack.logs)

    assert await value("Projects") == 3
    assert await value("API keys") == len(e2e.org.keys)
    assert await value("Never used") == 2  # spare, fresh-unused
    assert await value("Idle over ${idle_days} days") == 1  # billing-worker
    assert await value("Older than ${rotation_days} days") == 2  # notebook, pipeline
    assert await value("Owner lost access") == 2  # old-laptop, eve-notebook


async def test_credential_stat_panels_count_the_organization(e2e: EndToEnd) -> None:
    async def value(panel: str) -> float:
        async def one() -> float | None:
            result = await e2e.stack.query(panel_query(panel))
            return float(result[0]["value"][1]) if result else None

        return await poll(one, panel, TIMEOUT, e2e.stack.logs)

    assert await value("Admin keys") == len(e2e.org.admin_keys) == 11
    assert await value("Admin keys without expiry") == 1  # terraform
    # openai-key-exporter and deploy (5 days), ci-admin (10 days); not release (20 days)
    assert await value("Admin keys expiring within ${admin_expiry_days} days") == 3
    assert await value("Members") == len(e2e.org.members) == 4  # Eve left
    assert await value("Pending invites") == 2  # not the expired one, nor the accepted one
    assert await value("Keys whose owner left") == 1  # eve-notebook
    # gateway-mtls (20 days) and legacy-mtls (expired); not the inactive standby-mtls
    assert await value("Certificates expiring within ${certificate_expiry_days} days") == 2
    expires_in = await value("Exporter's admin key expires in")
    assert 5 * DAY - 120 < expires_in <= 5 * DAY, expires_in


async def test_admin_key_inventory_marks_only_the_exporters_own_key(e2e: EndToEnd) -> None:
    result = await e2e.stack.query(panel_query("Admin key inventory", "E"))
    marks = {r["metric"]["admin_api_key_id"]: float(r["value"][1]) for r in result}
    own = e2e.org.admin_keys["openai-key-exporter"].id
    assert marks == {k.id: 1.0 if k.id == own else 0.0 for k in e2e.org.admin_keys.values()}


async def test_owner_left_table_lists_exactly_the_keys_of_departed_owners(e2e: EndToEnd) -> None:
    departed = {e2e.org.keys["eve-notebook"].id}
    for ref_id in ("A", "B"):
        result = await e2e.stack.query(panel_query("Project keys whose owner left", ref_id))
        assert {r["metric"]["api_key_id"] for r in result} == departed, ref_id


async def test_attention_table_lists_exactly_the_keys_that_alert(e2e: EndToEnd) -> None:
    """The keys of the inventory alerts (not those about usage, which the usage and spend
    dashboard shows)."""
    alerting = {subject for name, subject in e2e.org.expected if name in KEY_ALERTS}

    for ref_id in ("A", "B", "C"):  # age, idle, never used: merged into one row per key

        async def rows(ref_id: str = ref_id) -> set[str] | None:
            result = await e2e.stack.query(panel_query("Keys that need attention", ref_id))
            return {r["metric"]["api_key_id"] for r in result} or None

        assert await poll(rows, "attention rows", TIMEOUT, e2e.stack.logs) == alerting


async def test_keys_per_project_is_sorted_most_first(e2e: EndToEnd) -> None:
    result = await e2e.stack.query(panel_query("Keys per project"))
    assert result[0]["metric"]["project_name"] == "Crowded"
    assert [float(r["value"][1]) for r in result] == [51, 8, 7]


async def test_project_variable_lists_every_project_by_name(e2e: EndToEnd) -> None:
    series = await e2e.stack.query("openai_project_info")
    found = set()
    for uid, dashboard in dashboards().items():
        for s in series:
            line = grafana_query_result_line(s["metric"], s["value"][1], 0)
            match = project_regex(dashboard).search(line)
            assert match, (uid, line)
            found.add((match.group("value"), match.group("text")))
    assert found == {(p.id, p.name) for p in e2e.org.projects.values()}


async def test_spend_panels_show_the_organization(e2e: EndToEnd) -> None:
    async def value(panel: str) -> float:
        async def one() -> float | None:
            result = await e2e.stack.query(panel_query(panel))
            return float(result[0]["value"][1]) if result else None

        return await poll(one, panel, TIMEOUT, e2e.stack.logs)

    assert await value("Organization spend this month") == e2e.org.spend[""] == 205
    assert await value("Organization spend limit") == 250
    assert await value("Organization spend of its limit") == 82
    assert await value("Enforcing limits") == 1  # Crowded
    assert await value("Projects at ${near_limit_percent} % of their limit") == 2  # not 70 %

    result = await e2e.stack.query(panel_query("Spend this month by project against its limit"))
    spent = {r["metric"]["project_name"]: float(r["value"][1]) for r in result}
    assert spent == {name: usd for name, usd in e2e.org.spend.items() if name}


async def test_keys_spiking_panel_counts_the_spiking_key(e2e: EndToEnd) -> None:
    async def spiking() -> float | None:
        (result,) = await e2e.stack.query(panel_query("Keys spiking"))
        return float(result["value"][1]) or None

    assert await poll(spiking, "a key spiking", TIMEOUT, e2e.stack.logs) == 1


async def test_each_spike_twin_misses_one_threshold(e2e: EndToEnd) -> None:
    """The same burst: the busy key is over the floor but not 5 times its week; the quiet
    key 5 times its week but under the floor; only the spiky key is both."""
    keys = e2e.org.keys
    ids = {keys[name].id: name for name in ("spiky-agent", "busy-service", "quiet-script")}
    rule = "openai_api_key:usage_tokens:rate1h"

    async def names(expr: str) -> set[str]:
        return {ids[r["metric"]["api_key_id"]] for r in await e2e.stack.query(expr)} & set(
            ids.values()
        )

    async def over_floor() -> set[str] | None:
        found = await names(f"{rule} * 60 > 1000")
        return found if found == {"spiky-agent", "busy-service"} else None

    await poll(over_floor, "the bursts over the floor", TIMEOUT, e2e.stack.logs)
    assert await names(f"{rule} > 5 * avg_over_time({rule}[7d] offset 1h)") == {
        "spiky-agent",
        "quiet-script",
    }


async def test_departed_owners_requests_are_counted_per_key(e2e: EndToEnd) -> None:
    """The requests of the departed owner's key reach Prometheus as the simulator
    reported them: three, 30 minutes ago; the idle key of the other departed owner has no
    usage series at all."""
    keys = e2e.org.keys
    result = await e2e.stack.query(
        f'sum by (api_key_id) (openai_usage_requests_total{{api_key_id=~"'
        f'{keys["eve-notebook"].id}|{keys["old-laptop"].id}"}})'
    )
    assert {r["metric"]["api_key_id"]: float(r["value"][1]) for r in result} == {
        keys["eve-notebook"].id: 3
    }


# ----------------------------------------------------------------------- alerts

_ACTION = re.compile(r"\{\{-?\s*(.*?)\s*-?\}\}", re.DOTALL)


def printed_labels(template: str, labels: dict[str, str]) -> set[str]:
    """The labels a Prometheus template prints for an alert with `labels`: those of
    the branches its `{{ if $labels.x }}` / `{{ if eq $labels.x "v" }}` take."""
    taken: list[bool] = []
    printed: set[str] = set()
    for action in _ACTION.findall(template):
        if action.startswith("if "):
            condition = action.removeprefix("if ").strip()
            equal = re.fullmatch(r'eq \$labels\.(\w+) "([^"]*)"', condition)
            present = re.fullmatch(r"\$labels\.(\w+)", condition)
            assert equal or present, f"condition not understood: {condition}"
            if equal:
                taken.append(labels.get(equal.group(1), "") == equal.group(2))
            elif present:
                taken.append(bool(labels.get(present.group(1))))
        elif action == "else":
            taken[-1] = not taken[-1]
        elif action == "end":
            taken.pop()
        elif all(taken):
            printed |= set(re.findall(r"\$labels\.(\w+)", action))
    assert not taken, f"unbalanced template: {template}"
    return printed


def dashboard_uid(url: str) -> str:
    found = re.search(r"/d/([^/]+)/", url)
    assert found, url
    return found.group(1)


async def test_alerts_fire_for_exactly_the_subjects_built_for_them(e2e: EndToEnd) -> None:
    """Key, project, admin key, owner and certificate alerts: each for its subjects only;
    the twins just short of each threshold, and the inactive certificates, stay silent."""

    async def firing() -> list[dict[str, Any]] | None:
        active = [a for a in await e2e.stack.prometheus_alerts() if a["state"] == "firing"]
        seen = {identity(a["labels"]) for a in active}
        return active if e2e.org.expected <= seen else None

    active = await poll(firing, "the alerts to fire", TIMEOUT, e2e.stack.logs)
    assert {identity(a["labels"]) for a in active} == e2e.org.expected
    instance = urllib.parse.quote(e2e.stack.exporter_url.removeprefix("http://"), safe="")
    for alert in active:
        name, subject = identity(alert["labels"])
        assert alert["labels"] == e2e.expected_labels(name, subject)
        shipped = alerts()[name].annotations
        assert alert["annotations"]["summary"] == shipped["summary"]
        assert alert["annotations"]["runbook_url"] == shipped["runbook_url"]
        # Every label the shipped description prints is filled in, not left empty.
        description = alert["annotations"]["description"]
        assert "<no value>" not in description, (name, description)
        named = printed_labels(shipped["description"], alert["labels"])
        assert named, name
        for label in named:
            assert alert["labels"][label], (name, label)
            assert alert["labels"][label] in description, (label, description)
        # The link opens the alert's dashboard on its project, else on its exporter
        # (when that dashboard can select one: the usage and spend one cannot).
        dashboard_url = alert["annotations"]["dashboard_url"]
        uid = dashboard_uid(dashboard_url)
        assert uid in dashboards(), dashboard_url
        if "project_id" in alert["labels"]:
            assert f"var-project={alert['labels']['project_id']}" in dashboard_url
        elif "instance" in variables(dashboards()[uid]):
            assert f"var-instance={instance}" in dashboard_url
        else:
            assert "var-" not in dashboard_url, dashboard_url


async def test_every_credential_alert_has_a_subject(e2e: EndToEnd) -> None:
    """The organization covers every key, admin key, certificate, usage, spend and audit
    event alert, so none of the firing checks above passes for want of a case."""
    assert {name for name, _ in e2e.org.expected} == set(
        KEY_ALERTS + PROJECT_ALERTS + CREDENTIAL_ALERTS + USAGE_ALERTS + AUDIT_ALERTS
    ) - {AUDIT_UNAVAILABLE}


async def test_audit_thresholds_held_silent_at_their_value(e2e: EndToEnd) -> None:
    """The organization-wide twins: while exactly 10 keys had been created and 5 logins
    had failed, Prometheus recorded those counts and neither alert, pending or firing,
    existed; one more of each fired both (test_alerts_fire_... above)."""
    assert e2e.org.audit is not None
    held = e2e.org.audit.held_at
    (keys,) = await e2e.stack.query(
        'sum(openai_audit_events:increase1h{event_type="api_key.created"})', at=held
    )
    (logins,) = await e2e.stack.query(
        'sum(openai_audit_events:increase15m{event_type="login.failed"})', at=held
    )
    assert (float(keys["value"][1]), float(logins["value"][1])) == (
        BURST_THRESHOLD,
        LOGIN_FAILURE_THRESHOLD,
    )
    for name in AUDIT_THRESHOLD_ALERTS:
        assert await e2e.stack.query(alerts()[name].expr, at=held) == [], name
    names = "|".join(AUDIT_THRESHOLD_ALERTS)
    assert await e2e.stack.query(f'ALERTS{{alertname=~"{names}"}}', at=held) == []


async def test_audit_events_are_counted_once_per_actor_type(e2e: EndToEnd) -> None:
    """The key creations by actor type, as the simulator's audit log holds them, each once."""
    logged: dict[str, float] = {}
    for event in e2e.org.org.audit_events():
        if event.type == "api_key.created" and event.actor is not None:
            logged[event.actor.kind] = logged.get(event.actor.kind, 0) + 1
    expr = 'sum by (actor_type) (openai_audit_events_total{event_type="api_key.created"}) > 0'

    async def counted() -> dict[str, float] | None:
        result = await e2e.stack.query(expr)
        found = {r["metric"]["actor_type"]: float(r["value"][1]) for r in result}
        return found if found == logged else None

    assert await poll(counted, "the key creations counted", TIMEOUT, e2e.stack.logs) == {
        "session": 1,
        "user_api_key": 1,
        "service_account_api_key": 9,
    }


async def test_exporter_alerts_stay_silent(e2e: EndToEnd) -> None:
    """Their expressions, exactly as shipped, hold nothing while the exporter is healthy;
    nor does that of OpenAIAuditLogUnavailable while the audit log is read."""
    names = "|".join(SILENT_ALERTS)

    async def silent() -> bool | None:
        for name in SILENT_ALERTS:
            if await e2e.stack.query(alerts()[name].expr):
                return None
        return not await e2e.stack.query(f'ALERTS{{alertname=~"{names}"}}') or None

    await poll(silent, "the exporter alerts to be silent", TIMEOUT, e2e.stack.logs)
    assert not [
        a for a in await e2e.stack.alertmanager_alerts() if a["labels"]["alertname"] in names
    ]


async def test_alerts_reach_alertmanager_routed_by_severity_grouped_by_project(
    e2e: EndToEnd,
) -> None:
    async def received() -> list[dict[str, Any]] | None:
        got = await e2e.stack.alertmanager_alerts()
        return got if e2e.org.expected <= {identity(a["labels"]) for a in got} else None

    got = await poll(received, "the alerts to reach Alertmanager", TIMEOUT, e2e.stack.logs)
    assert {identity(a["labels"]) for a in got} == e2e.org.expected
    for alert in got:
        name, subject = identity(alert["labels"])
        assert alert["labels"] == e2e.expected_labels(name, subject)
        severity = alert["labels"]["severity"]
        assert [r["name"] for r in alert["receivers"]] == [f"openai-{severity}"]

    # Each inhibition of the example configuration mutes exactly the warning it is for:
    # the overdue key's RotationDue, the exporter's own admin key's ExpiringSoon (not that of
    # "deploy", as close to expiry but not the exporter's), the expired certificate's
    # ExpiringSoon (not that of gateway-mtls, which has not expired), the near-limit
    # warning of the project whose limit enforces (not that of Payments, near but not
    # enforcing, nor the organization's: a project's enforcing limit is not the
    # organization's). All else is active.
    muted = {
        ("OpenAIApiKeyRotationDue", e2e.org.keys["pipeline"].id),
        ("OpenAIAdminApiKeyExpiringSoon", e2e.org.admin_keys["openai-key-exporter"].id),
        ("OpenAICertificateExpiringSoon", e2e.org.certificates["legacy-mtls"].id),
        ("OpenAIProjectSpendNearLimit", e2e.org.projects["Crowded"].id),
    }

    async def inhibited() -> dict[tuple[str, str], str] | None:
        states = {identity(a["labels"]): a["status"]["state"] for a in await received() or []}
        return states if all(states.get(m) == "suppressed" for m in muted) else None

    states = await poll(inhibited, "the inhibitions", TIMEOUT, e2e.stack.logs)
    assert {k for k, state in states.items() if state != "active"} == muted

    # One group per project and receiver, holding all that project's alerts of that severity;
    # the organization-wide credential alerts (no project_id) share one group per receiver.
    groups = await e2e.stack.alertmanager_groups()
    grouped = {
        (g["receiver"]["name"], tuple(sorted(g["labels"].items()))): {
            identity(a["labels"]) for a in g["alerts"]
        }
        for g in groups
    }
    expected: dict[tuple[str, tuple[tuple[str, str], ...]], set[tuple[str, str]]] = {}
    for alert in got:
        receiver = f"openai-{alert['labels']['severity']}"
        project_id = alert["labels"].get("project_id")
        group = (("project_id", project_id),) if project_id else ()
        expected.setdefault((receiver, group), set()).add(identity(alert["labels"]))
    assert grouped == expected
