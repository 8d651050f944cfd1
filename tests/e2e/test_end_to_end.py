"""End to end on loopback: simulator -> exporter -> Prometheus (shipped rules) -> Alertmanager.

The simulated organization holds one key per key alert, plus keys just short of each
threshold that must not alert. A real Prometheus (1 s scrape and evaluation) loads the
shipped rules, with only the `for:` of the key alerts shortened; a real Alertmanager runs
the example configuration with its notification integrations removed. Everything is polled
with a bound; nothing sleeps a fixed time.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

import promql_parser
import pytest
import pytest_asyncio

from exporter.simulator.app import SimulatorState, serve_simulator
from exporter.simulator.organization import (
    Organization,
    SimApiKey,
    SimProject,
    SimServiceAccount,
    SimUser,
)
from tests.alerts.rules import (
    EXPORTER_ALERTS,
    KEY_ALERTS,
    PROJECT_ALERTS,
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
)
from tests.e2e.stack import SCRAPE_JOB, Stack, poll, start_stack

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

DAY = 86400
# The key alerts wait 1 s instead of their shipped 15m/1h. The exporter alerts keep their
# shipped `for:`: OpenAIExporterDown is rightly pending until the first scrape, and must
# not fire over that. Their silence is checked on their expressions instead.
SHORTENED = dict.fromkeys(KEY_ALERTS + PROJECT_ALERTS, "1s")
# Dashboard queries that return nothing for this organization, with the reason.
# None so far: every panel has data here.
EMPTY_BY_DESIGN: dict[str, str] = {}
# How long Prometheus and Alertmanager may take for what is polled below; the whole run
# normally takes about 15 s.
TIMEOUT = 60.0


@dataclass
class Org:
    """The simulated organization, and what it was built to trigger."""

    org: Organization
    projects: dict[str, SimProject] = field(default_factory=dict)
    keys: dict[str, SimApiKey] = field(default_factory=dict)  # by key name
    project_of: dict[str, SimProject] = field(default_factory=dict)  # by key id
    # (alertname, api_key_id or project_id) of every alert that must fire.
    expected: set[tuple[str, str]] = field(default_factory=set)


def build_org(now: int) -> Org:
    built = Org(Organization(seed=3, now=now))
    org = built.org

    def user(name: str) -> SimUser:
        return SimUser(org.new_user_id(), name, f"{name.lower()}@example.com", "member", now)

    def service_account(name: str) -> SimServiceAccount:
        return SimServiceAccount(org.new_service_account_id(), name, "member", now)

    alice, bob, carol, dave = user("Alice"), user("Bob"), user("Carol"), user("Dave")
    etl, ci = service_account("etl"), service_account("ci")

    def project(name: str) -> SimProject:
        built.projects[name] = org.add_project(name, created_at=now - 900 * DAY)
        return built.projects[name]

    def key(
        project: SimProject,
        name: str,
        owner: SimUser | SimServiceAccount,
        created_days: float,
        used_days: float | None,
        *alert_names: str,
        access: str = "active",
    ) -> None:
        built.keys[name] = org.add_key(
            project.id,
            name,
            created_at=int(now - created_days * DAY),
            last_used_at=None if used_days is None else int(now - used_days * DAY),
            owner=owner,
            owner_project_access="inactive" if access == "inactive" else "active",
        )
        built.project_of[built.keys[name].id] = project
        built.expected |= {(alert, built.keys[name].id) for alert in alert_names}

    payments = project("Payments")
    key(payments, "billing-worker", alice, 150, 100, "OpenAIApiKeyUnused")
    key(payments, "spare", bob, 40, None, "OpenAIApiKeyNeverUsed")
    key(payments, "web", alice, 20, 1 / 24)
    key(payments, "almost-idle", alice, 100, 89)  # idle 89 days: under 90
    key(payments, "fresh-unused", bob, 29, None)  # never used, 29 days: under 30

    # A name with quotes, an ampersand and an emoji, carried intact to Alertmanager.
    research = project('Research "R&D" \U0001f680')
    key(research, "notebook", carol, 200, 1, "OpenAIApiKeyRotationDue")
    key(
        research,
        "pipeline",
        etl,
        400,
        2 / 24,
        "OpenAIApiKeyRotationDue",
        "OpenAIApiKeyRotationOverdue",
    )
    key(research, "old-laptop", dave, 10, 5, "OpenAIApiKeyOwnerInactive", access="inactive")
    key(research, "almost-due", carol, 179, 1)  # 179 days old: under 180

    crowded = project("Crowded")
    for index in range(51):  # one over the threshold of 50
        key(crowded, f"ci-{index:02d}", ci, 10, 1 / 24)
    built.expected.add(("OpenAIProjectTooManyKeys", crowded.id))
    return built


@dataclass
class EndToEnd:
    org: Org
    stack: Stack


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def e2e(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[EndToEnd]:
    built = build_org(int(time.time()))
    async with AsyncExitStack() as exit_stack:
        admin_api_url = await exit_stack.enter_async_context(
            serve_simulator(SimulatorState(org=built.org))
        )
        stack = await start_stack(
            exit_stack, tmp_path_factory.mktemp("e2e"), admin_api_url, SHORTENED
        )
        yield EndToEnd(built, stack)


def identity(labels: dict[str, str]) -> tuple[str, str]:
    return labels["alertname"], labels.get("api_key_id") or labels.get("project_id") or ""


def expected_labels(e2e: EndToEnd, alertname: str, subject: str) -> dict[str, str]:
    """Every label the alert must carry: the joins on the *_info metrics bring the names."""
    instance = e2e.stack.exporter_url.removeprefix("http://")
    labels = {
        "alertname": alertname,
        "severity": alerts()[alertname].labels["severity"],
        "job": SCRAPE_JOB,
        "instance": instance,
    }
    projects = {p.id: p for p in e2e.org.projects.values()}
    keys = {k.id: k for k in e2e.org.keys.values()}
    if subject in projects:
        return labels | {"project_id": subject, "project_name": projects[subject].name}
    key, project = keys[subject], e2e.org.project_of[subject]
    owner_type = "user" if isinstance(key.owner, SimUser) else "service_account"
    return labels | {
        "project_id": project.id,
        "project_name": project.name,
        "api_key_id": key.id,
        "api_key_name": key.name,
        "owner_type": owner_type,
        "owner_id": key.owner.id,
        "owner_name": key.owner.name,
        "owner_project_access": key.owner_project_access,
    }


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
    assert await value("Owner lost access") == 1  # old-laptop


async def test_attention_table_lists_exactly_the_keys_that_alert(e2e: EndToEnd) -> None:
    keys = {k.id for k in e2e.org.keys.values()}
    alerting = {subject for _, subject in e2e.org.expected if subject in keys}

    for ref_id in ("A", "B", "C"):  # age, idle, never used: merged into one row per key

        async def rows(ref_id: str = ref_id) -> set[str] | None:
            result = await e2e.stack.query(panel_query("Keys that need attention", ref_id))
            return {r["metric"]["api_key_id"] for r in result} or None

        assert await poll(rows, "attention rows", TIMEOUT, e2e.stack.logs) == alerting


async def test_keys_per_project_is_sorted_most_first(e2e: EndToEnd) -> None:
    result = await e2e.stack.query(panel_query("Keys per project"))
    assert result[0]["metric"]["project_name"] == "Crowded"
    assert [float(r["value"][1]) for r in result] == [51, 5, 4]


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


# ----------------------------------------------------------------------- alerts


async def test_key_alerts_fire_for_exactly_the_keys_built_for_them(e2e: EndToEnd) -> None:
    async def firing() -> list[dict[str, Any]] | None:
        active = [a for a in await e2e.stack.prometheus_alerts() if a["state"] == "firing"]
        seen = {identity(a["labels"]) for a in active}
        return active if e2e.org.expected <= seen else None

    active = await poll(firing, "the key alerts to fire", TIMEOUT, e2e.stack.logs)
    assert {identity(a["labels"]) for a in active} == e2e.org.expected
    for alert in active:
        name, subject = identity(alert["labels"])
        assert alert["labels"] == expected_labels(e2e, name, subject)
        shipped = alerts()[name].annotations
        assert alert["annotations"]["summary"] == shipped["summary"]
        assert alert["annotations"]["runbook_url"] == shipped["runbook_url"]
        description = alert["annotations"]["description"]
        for label in ("project_name", "api_key_name", "owner_name"):
            if label in alert["labels"]:
                assert alert["labels"][label] in description, (label, description)
        assert alert["labels"]["project_id"] in alert["annotations"]["dashboard_url"]


async def test_exporter_alerts_stay_silent(e2e: EndToEnd) -> None:
    """Their expressions, exactly as shipped, hold nothing while the exporter is healthy."""
    names = "|".join(EXPORTER_ALERTS)

    async def silent() -> bool | None:
        for name in EXPORTER_ALERTS:
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
    pipeline = e2e.org.keys["pipeline"].id
    for alert in got:
        name, subject = identity(alert["labels"])
        assert alert["labels"] == expected_labels(e2e, name, subject)
        severity = alert["labels"]["severity"]
        assert [r["name"] for r in alert["receivers"]] == [f"openai-{severity}"]

    # The overdue key's RotationDue is inhibited by its RotationOverdue; all else is active.
    async def inhibited() -> dict[tuple[str, str], str] | None:
        states = {identity(a["labels"]): a["status"]["state"] for a in await received() or []}
        return states if states.get(("OpenAIApiKeyRotationDue", pipeline)) == "suppressed" else None

    states = await poll(inhibited, "the inhibition of RotationDue", TIMEOUT, e2e.stack.logs)
    assert {k for k, state in states.items() if state != "active"} == {
        ("OpenAIApiKeyRotationDue", pipeline)
    }

    # One group per project and receiver, holding all that project's alerts of that severity.
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
        group = (("project_id", alert["labels"]["project_id"]),)
        expected.setdefault((receiver, group), set()).add(identity(alert["labels"]))
    assert grouped == expected
