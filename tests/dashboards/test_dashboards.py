"""The shipped Grafana dashboards: importable, portable, and querying only real series.

No Grafana runs here; tests/e2e runs every query against a live Prometheus.
"""

from __future__ import annotations

import json
import re
from typing import Any

import promql_parser
import pytest

from tests.alerts.rules import (
    CONTRACT_METRICS,
    PROMETHEUS_METRICS,
    RUNBOOK_URL,
    alerts,
    days_threshold,
    days_thresholds,
    metric_names,
    recording_rule_names,
    runbook_anchors,
)
from tests.dashboards.grafana import (
    DASHBOARD_DIR,
    DASHBOARD_UIDS,
    DATASOURCE,
    Query,
    dashboards,
    default_values,
    grafana_query_result_line,
    load,
    panels,
    project_regex,
    queries,
    runnable,
    substitute,
    variable_names,
    variables,
)

KEYS = "openai-api-keys"
HEALTH = "openai-key-exporter-health"
CREDENTIALS = "openai-credentials"
USAGE = "openai-usage-and-spend"
# The metrics the health dashboard must no longer read: replaced by per-collector ones.
REPLACED_METRICS = {
    "openai_exporter_last_success_timestamp_seconds",
    "openai_exporter_refresh_duration_seconds",
}
# Panels that show data; rows only group them.
ALL_PANELS = [
    pytest.param(uid, panel, id=f"{uid}/{panel['title']}")
    for uid, dashboard in dashboards().items()
    for panel in panels(dashboard)
    if panel["type"] != "row"
]
ALL_QUERIES = [pytest.param(query, id=query.id) for query in queries()]


def test_shipped_dashboards_are_exactly_these() -> None:
    assert {path.name for path in DASHBOARD_DIR.glob("*.json")} == set(DASHBOARD_UIDS)
    for name, uid in DASHBOARD_UIDS.items():
        dashboard = load(name)
        assert dashboard["uid"] == uid
        assert dashboard["id"] is None, "an id would clash with the importing Grafana's"
        assert dashboard["title"]
        assert dashboard["description"]
        assert "__inputs" not in dashboard, "the datasource comes from a variable, not import"
        # Grafana 10.0 writes schema 38, 10.4 and 11.0 write 39.
        assert 38 <= dashboard["schemaVersion"] <= 41


@pytest.mark.parametrize("name", sorted(DASHBOARD_UIDS))
def test_json_is_formatted(name: str) -> None:
    """Two-space JSON with a final newline, so that an edit shows as a small diff."""
    text = (DASHBOARD_DIR / name).read_text(encoding="utf-8")
    assert text == json.dumps(json.loads(text), indent=2, ensure_ascii=False) + "\n"


def test_panel_counts() -> None:
    counts = {uid: len(list(panels(d))) for uid, d in dashboards().items()}
    assert counts == {KEYS: 12, HEALTH: 13, CREDENTIALS: 18, USAGE: 16}


@pytest.mark.parametrize("uid", sorted(DASHBOARD_UIDS.values()))
def test_rows_are_open_and_span_the_width(uid: str) -> None:
    """A row holds no query; open (not collapsed), its panels follow it at the top level,
    so every panel of the dashboard shows on load."""
    for panel in panels(dashboards()[uid]):
        if panel["type"] == "row":
            assert panel["title"]
            assert panel["collapsed"] is False
            assert panel["panels"] == []
            assert "targets" not in panel
            assert panel["gridPos"] == {"h": 1, "w": 24, "x": 0, "y": panel["gridPos"]["y"]}


@pytest.mark.parametrize("uid", sorted(DASHBOARD_UIDS.values()))
def test_datasource_is_a_variable(uid: str) -> None:
    ds = variables(dashboards()[uid])["datasource"]
    assert ds["type"] == "datasource"
    assert ds["query"] == "prometheus"
    assert "${datasource}" not in str(ds)


@pytest.mark.parametrize("uid", sorted(DASHBOARD_UIDS.values()))
def test_project_variable_is_fed_by_project_info(uid: str) -> None:
    project = variables(dashboards()[uid])["project"]
    assert project["type"] == "query"
    assert project["datasource"] == DATASOURCE
    assert "openai_project_info" in project["definition"]
    assert project["query"]["query"] == project["definition"]
    promql_parser.parse(re.sub(r"^query_result\((.*)\)$", r"\1", project["definition"]))
    assert project["includeAll"]
    assert project["multi"]
    assert project["allValue"] == ".*"


@pytest.mark.parametrize(
    ("labels", "value", "text"),
    [
        (
            {"project_id": "proj_a", "project_name": "Payments", "status": "active"},
            "proj_a",
            "Payments",
        ),
        (
            {"project_id": "proj_b", "project_name": 'Team "Alpha", \\ \U0001f680'},
            "proj_b",
            'Team "Alpha", \\ \U0001f680',
        ),
        (
            {
                "instance": "10.0.0.7:9471",
                "job": "openai-key-exporter",
                "namespace": "monitoring",
                "project_id": "proj_c",
                "project_name": "x",
                "service": "openai-key-exporter",
                "status": "archived",
            },
            "proj_c",
            "x",
        ),
    ],
)
def test_project_variable_shows_names_and_filters_on_ids(
    labels: dict[str, str], value: str, text: str
) -> None:
    line = grafana_query_result_line({"__name__": "openai_project_info", **labels}, "1", 1)
    for uid in DASHBOARD_UIDS.values():
        match = project_regex(dashboards()[uid]).search(line)
        assert match, line
        assert match.group("value") == value
        assert match.group("text") == text


@pytest.mark.parametrize("uid", [HEALTH, CREDENTIALS])
def test_job_and_instance_all_means_the_exporters_only(uid: str) -> None:
    """`.*` as All would show every target of Prometheus in the Scrape panel; without an
    allValue Grafana sends the exporter jobs it found over the time range, down ones too."""
    for name in ("job", "instance"):
        var = variables(dashboards()[uid])[name]
        assert var["allValue"] is None
        assert "openai_exporter_build_info" in var["definition"]
        assert var["refresh"] == 2, "refreshed with the time range"


def test_health_dashboard_shows_each_collector() -> None:
    """A `collector` variable fed by the per-collector success metric; every panel on the
    exporter's refreshes filters on it and splits by it; success, duration and errors by
    reason each have a panel; the replaced unlabelled metrics are gone."""
    dashboard = dashboards()[HEALTH]
    var = variables(dashboard)["collector"]
    assert var["type"] == "query"
    assert "openai_exporter_collector_success" in var["definition"]
    assert var["includeAll"]
    assert var["multi"]
    collector_metrics = {
        "openai_exporter_collector_success",
        "openai_exporter_collector_duration_seconds",
        "openai_exporter_collector_last_success_timestamp_seconds",
        "openai_exporter_refreshes_total",
        "openai_exporter_refresh_errors_total",
    }
    shown: set[str] = set()
    for query in queries():
        if query.dashboard != HEALTH:
            continue
        names = metric_names(runnable(query))
        assert not names & REPLACED_METRICS, query.id
        if names & collector_metrics:
            assert 'collector=~"$collector"' in query.expr, query.id
            shown |= names & collector_metrics
    assert shown == collector_metrics
    legends = {
        target["expr"]: target.get("legendFormat", "")
        for panel in panels(dashboard)
        for target in panel["targets"]
        if panel["type"] == "timeseries"
    }
    for expr, legend in legends.items():
        if "collector" in expr:
            assert "{{collector}}" in legend, expr
    errors = [q for q in queries() if q.dashboard == HEALTH and "refresh_errors_total" in q.expr]
    assert any("by (organization, collector, reason)" in q.expr for q in errors)


def test_no_dashboard_reads_a_replaced_metric() -> None:
    for query in queries():
        assert not metric_names(runnable(query)) & REPLACED_METRICS, query.id


def test_threshold_variables_default_to_the_alert_thresholds() -> None:
    values = default_values(dashboards()[KEYS])
    assert int(values["idle_days"]) == days_threshold("OpenAIApiKeyUnused")
    assert int(values["never_used_days"]) == days_threshold("OpenAIApiKeyNeverUsed")
    assert int(values["rotation_days"]) == days_threshold("OpenAIApiKeyRotationDue")
    values = default_values(dashboards()[CREDENTIALS])
    assert int(values["admin_expiry_days"]) == days_threshold("OpenAIAdminApiKeyExpiringSoon")
    assert int(values["admin_rotation_days"]) == days_threshold("OpenAIAdminApiKeyRotationDue")
    assert int(values["certificate_expiry_days"]) == days_threshold("OpenAICertificateExpiringSoon")
    # OpenAIAdminApiKeyUnused: idle days of used keys first, then age of never-used ones.
    idle, _never_used_age = days_thresholds("OpenAIAdminApiKeyUnused")
    assert int(values["admin_idle_days"]) == idle
    values = default_values(dashboards()[USAGE])
    for name in ("OpenAIProjectSpendNearLimit", "OpenAIOrganizationSpendNearLimit"):
        (percent,) = re.findall(r">= (\d+)", alerts()[name].expr)
        assert values["near_limit_percent"] == percent, name
    floor, factor = re.findall(r"> (\d+)", alerts()["OpenAIApiKeyUsageSpike"].expr)
    assert values["spike_floor_tokens_per_minute"] == floor
    assert values["spike_factor"] == factor


def test_usage_dashboard_covers_usage_and_spend() -> None:
    """Spend against the limits (project and organization), enforcing limits, spend alert
    thresholds, top keys by tokens and by cost with name and owner, usage per model, spend
    per line item, requests per key: each has its panel and reads its metrics."""
    by_title = {panel["title"]: panel for panel in panels(dashboards()[USAGE])}
    exprs = {
        title: " ".join(t["expr"] for t in panel["targets"]) for title, panel in by_title.items()
    }
    expected = {
        "Spend this month by project against its limit": {
            "openai_project_spend_month_to_date_usd",
            "openai_project_spend_limit_usd",
            "openai_project_spend_limit_enforcing",
            "openai_project_info",
        },
        "Organization spend this month vs limit": {
            "openai_organization_spend_month_to_date_usd",
            "openai_organization_spend_limit_usd",
            "openai_organization_spend_alert_threshold_usd",
        },
        "Enforcing limits": {
            "openai_organization_spend_limit_enforcing",
            "openai_project_spend_limit_enforcing",
        },
        "Spend alert thresholds": {
            "openai_organization_spend_alert_threshold_usd",
            "openai_project_spend_alert_threshold_usd",
        },
        "Top keys by tokens": {
            "openai_usage_input_tokens_total",
            "openai_usage_output_tokens_total",
            "openai_api_key:info",
        },
        "Top keys by cost": {"openai_cost_usd_total", "openai_api_key:info"},
        "Usage per model": {"openai_usage_input_tokens_total", "openai_usage_output_tokens_total"},
        "Spend per line item": {"openai_cost_usd_total"},
        "Requests per key over time": {"openai_usage_requests_total", "openai_api_key:info"},
    }
    values = default_values(dashboards()[USAGE])
    for title, metrics in expected.items():
        read = set().union(
            *(metric_names(substitute(t["expr"], values)) for t in by_title[title]["targets"])
        )
        assert metrics <= read, title
    for title in ("Top keys by tokens", "Top keys by cost"):
        panel = by_title[title]
        assert panel["type"] == "table"
        assert exprs[title].startswith("topk(")
        renamed = panel["transformations"][1]["options"]["renameByName"]
        assert {"api_key_name", "owner_name", "project_name"} <= set(renamed), title
    assert "by (organization, model)" in exprs["Usage per model"]
    assert "by (organization, line_item)" in exprs["Spend per line item"]
    (requests,) = by_title["Requests per key over time"]["targets"]
    assert "{{api_key_name}}" in requests["legendFormat"]


def test_usage_dashboard_filters_every_project_metric_on_the_project() -> None:
    """Every query reading a per-project metric filters on $project (its joins then keep to
    those projects); the organization's metrics have no project_id to filter on."""
    organization = {
        "openai_organization_spend_month_to_date_usd",
        "openai_organization_spend_limit_usd",
        "openai_organization_spend_limit_enforcing",
        "openai_organization_spend_alert_threshold_usd",
    }
    for query in queries():
        if query.dashboard != USAGE:
            continue
        names = metric_names(runnable(query))
        if names <= organization | {"openai_project_info"}:
            continue
        assert 'project_id=~"$project"' in query.expr, query.id


def test_credentials_dashboard_covers_each_credential() -> None:
    """Admin keys (with the exporter's own marked), members by role, pending invites,
    certificates by time to expiry, keys whose owner left: each has its panel and query."""
    by_title = {
        panel["title"]: panel
        for panel in panels(dashboards()[CREDENTIALS])
        if panel["type"] != "row"
    }
    exprs = {
        title: " ".join(t["expr"] for t in panel["targets"]) for title, panel in by_title.items()
    }
    admin = exprs["Admin key inventory"]
    for metric in (
        "openai_admin_api_key_expires_timestamp_seconds",
        "openai_admin_api_key_last_used_timestamp_seconds",
        "openai_exporter_admin_api_key_info",
        "openai_admin_api_key:age_seconds",
        "openai_admin_api_key:idle_seconds",
    ):
        assert metric in admin, metric
    assert by_title["Admin key inventory"]["type"] == "table"
    renamed = by_title["Admin key inventory"]["transformations"][1]["options"]["renameByName"]
    assert {"owner_name", "admin_api_key_name"} <= set(renamed)
    assert "count by (organization, role) (openai_user_info" in exprs["Members by role"]
    assert 'status="pending"' in exprs["Pending invite list"]
    assert (
        "openai_certificate_not_after_timestamp_seconds" in exprs["Certificates by time to expiry"]
    )
    assert exprs["Certificates by time to expiry"].startswith("sort(")
    assert (
        'openai_api_key_owner_in_organization{organization=~"$organization"} == 0'
        in exprs["Project keys whose owner left"]
    )


def test_credentials_dashboard_has_a_security_events_row() -> None:
    """Below the row: events per type, key creations and deletions by actor type, failed
    logins, keys by scope set; each reads the audit metrics, the counts through the
    recording rules so that a series' first event counts."""
    dashboard = dashboards()[CREDENTIALS]
    every = list(panels(dashboard))
    (row,) = [panel for panel in every if panel["type"] == "row"]
    assert row["title"] == "Security events"
    below = [panel for panel in every if panel["gridPos"]["y"] > row["gridPos"]["y"]]
    above = [panel for panel in every if panel["gridPos"]["y"] < row["gridPos"]["y"]]
    assert len(above) == 13
    values = default_values(dashboard)
    by_title = {panel["title"]: panel for panel in below}
    exprs = {
        title: " ".join(t["expr"] for t in panel["targets"]) for title, panel in by_title.items()
    }
    read = {
        title: set().union(*(metric_names(substitute(t["expr"], values)) for t in panel["targets"]))
        for title, panel in by_title.items()
    }
    assert read == {
        "Audit events per hour, by type": {"openai_audit_events:increase1h"},
        "Key creations and deletions per hour, by actor type": {"openai_audit_events:increase1h"},
        "Failed logins per 15 minutes": {"openai_audit_events:increase15m"},
        "Keys by scope set": {"openai_api_key_scopes_info"},
    }
    assert "sum by (organization, event_type) (" in exprs["Audit events per hour, by type"]
    creations = exprs["Key creations and deletions per hour, by actor type"]
    assert "by (organization, event_type, actor_type)" in creations
    assert 'event_type=~"api_key.created|api_key.deleted"' in creations
    assert 'project_id=~"$project"' in creations
    logins = by_title["Failed logins per 15 minutes"]
    assert 'event_type="login.failed"' in exprs["Failed logins per 15 minutes"]
    (login_threshold,) = re.findall(r"> (\d+)", alerts()["OpenAILoginFailures"].expr)
    steps = logins["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert steps[-1]["value"] == int(login_threshold)
    scope_sets = exprs["Keys by scope set"]
    assert "count by (organization, scopes) (" in scope_sets
    assert '"scopes", "(unrestricted)", "scopes", ""' in scope_sets
    assert 'project_id=~"$project"' in scope_sets


@pytest.mark.parametrize(("uid", "panel"), ALL_PANELS)
def test_panel_is_portable_and_has_units(uid: str, panel: dict[str, Any]) -> None:
    assert panel["datasource"] == DATASOURCE
    assert panel["targets"], "a panel without a query"
    for target in panel["targets"]:
        assert target["datasource"] == DATASOURCE
    defaults = panel["fieldConfig"]["defaults"]
    assert defaults.get("unit"), "every panel sets a unit"
    assert panel.get("description"), "every panel says what it shows"
    if any("/ 86400" in t["expr"] for t in panel["targets"]):
        units = [defaults["unit"]] + [
            prop["value"]
            for override in panel["fieldConfig"]["overrides"]
            for prop in override["properties"]
            if prop["id"] == "unit"
        ]
        assert "d" in units, "a value in days shows with the unit days"


@pytest.mark.parametrize(("uid", "panel"), ALL_PANELS)
def test_panel_uses_only_defined_variables(uid: str, panel: dict[str, Any]) -> None:
    defined = set(default_values(dashboards()[uid]))
    texts = [panel["title"], panel.get("description", "")]
    texts += [t["expr"] for t in panel["targets"]]
    texts += [t.get("legendFormat", "") for t in panel["targets"]]
    for text in texts:
        assert variable_names(text) <= defined, text
        assert "[[" not in text, "the [[var]] syntax is deprecated"


@pytest.mark.parametrize("uid", sorted(DASHBOARD_UIDS.values()))
def test_layout(uid: str) -> None:
    dashboard = dashboards()[uid]
    ids = [panel["id"] for panel in panels(dashboard)]
    assert len(ids) == len(set(ids))
    cells: set[tuple[int, int]] = set()
    for panel in panels(dashboard):
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24
        mine = {
            (x, y)
            for x in range(pos["x"], pos["x"] + pos["w"])
            for y in range(pos["y"], pos["y"] + pos["h"])
        }
        assert not cells & mine, f"{panel['title']} overlaps another panel"
        cells |= mine


@pytest.mark.parametrize("query", ALL_QUERIES)
def test_query_parses_and_uses_only_known_metrics(query: Query) -> None:
    expr = runnable(query)
    assert "$" not in expr
    try:
        names = metric_names(expr)
    except ValueError as error:
        pytest.fail(f"{query.id} does not parse: {error}\n{expr}")
    known = CONTRACT_METRICS | PROMETHEUS_METRICS | recording_rule_names()
    assert names, "a query that selects no metric"
    assert names <= known, f"unknown metrics {names - known}"


@pytest.mark.parametrize("uid", sorted(DASHBOARD_UIDS.values()))
def test_organization_variable_selects_organizations_and_single_mode(uid: str) -> None:
    """Fed by openai_up of the probed organizations; All is `.*`, which also matches the
    series of an exporter without --config.file (no organization label at all)."""
    dashboard = dashboards()[uid]
    names = list(variables(dashboard))
    organization = variables(dashboard)["organization"]
    assert organization["type"] == "query"
    assert organization["datasource"] == DATASOURCE
    assert organization["definition"] == "label_values(openai_up, organization)"
    assert organization["query"]["query"] == organization["definition"]
    assert organization["includeAll"]
    assert organization["multi"]
    assert organization["allValue"] == ".*"
    # Before the variables whose queries it narrows.
    assert names.index("organization") == names.index("datasource") + 1
    for name, var in variables(dashboard).items():
        if var["type"] == "query" and name != "organization":
            assert ORGANIZATION_FILTER in var["definition"], name


ORGANIZATION_FILTER = 'organization=~"$organization"'
# Stands for the organization variable while checking the selectors that use it.
_ORGANIZATION_SENTINEL = "__organization__"


def unfiltered_selectors(expr: str, values: dict[str, str]) -> list[str]:
    """The metric selectors of `expr` that do not match organization=~"$organization"."""
    parsed = promql_parser.parse(
        substitute(expr, values | {"organization": _ORGANIZATION_SENTINEL})
    )
    missing: list[str] = []

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector) and not any(
            m.name == "organization"
            and m.op == promql_parser.MatchOp.Re
            and m.value == _ORGANIZATION_SENTINEL
            for m in node.matchers.matchers
        ):
            missing.append(str(node.name))

    promql_parser.walk(parsed, visit)
    return missing


@pytest.mark.parametrize("query", ALL_QUERIES)
def test_every_selector_filters_on_the_organization(query: Query) -> None:
    """Every series a panel reads, joined ones too, is of the selected organizations."""
    values = default_values(dashboards()[query.dashboard])
    assert unfiltered_selectors(query.expr, values) == [], query.id


def test_a_query_without_the_organization_filter_is_caught() -> None:
    values = default_values(dashboards()[KEYS])
    joined = (
        'openai_project_api_keys{organization=~"$organization"}'
        " * on (job, instance, organization, project_id) group_left (project_name)"
        " openai_project_info"
    )
    assert unfiltered_selectors(joined, values) == ["openai_project_info"]


@pytest.mark.parametrize("query", ALL_QUERIES)
def test_joins_and_groupings_keep_organizations_apart(query: Query) -> None:
    """A join or a per-exporter grouping names organization beside instance: two
    organizations probed through one exporter never match or merge."""
    for clause in re.findall(r"\b(?:on|by) \(([^)]*)\)", query.expr):
        labels = {label.strip() for label in clause.split(",")}
        if "instance" in labels:
            assert "organization" in labels, (query.id, clause)


@pytest.mark.parametrize("uid", sorted(DASHBOARD_UIDS.values()))
def test_panel_titles_and_query_ids_are_unique(uid: str) -> None:
    titles = [panel["title"] for panel in panels(dashboards()[uid])]
    assert len(titles) == len(set(titles))
    ids = [query.id for query in queries() if query.dashboard == uid]
    assert len(ids) == len(set(ids))


def links_of(dashboard: dict[str, Any]) -> list[str]:
    urls = [link["url"] for link in dashboard["links"]]
    urls += [link["url"] for panel in panels(dashboard) for link in panel.get("links", [])]
    return urls


def test_dashboards_link_each_other_and_the_runbook() -> None:
    uids = sorted(DASHBOARD_UIDS.values())
    for uid in uids:
        dashboard = dashboards()[uid]
        for other in uids:
            if other == uid:
                continue
            (to_other,) = [link for link in dashboard["links"] if f"/d/{other}/" in link["url"]]
            assert to_other["includeVars"]
            assert to_other["keepTime"]
        assert RUNBOOK_URL in [link["url"] for link in dashboard["links"]]


@pytest.mark.parametrize("uid", sorted(DASHBOARD_UIDS.values()))
def test_runbook_links_point_at_runbook_sections(uid: str) -> None:
    anchors = runbook_anchors()
    alert_names = {name.lower() for name in alerts()}
    for url in links_of(dashboards()[uid]):
        if url.startswith(RUNBOOK_URL + "#"):
            anchor = url.split("#", 1)[1]
            assert anchor in anchors
            assert anchor in alert_names


def test_alert_dashboard_urls_point_at_shipped_dashboards() -> None:
    for name, rule in alerts().items():
        url = rule.annotations["dashboard_url"]
        uid = re.search(r"/d/([^/]+)/", url)
        assert uid, name
        assert uid.group(1) in DASHBOARD_UIDS.values()
        for var in re.findall(r"var-(\w+)=", url):
            assert var in variables(dashboards()[uid.group(1)]), f"{name}: no variable {var}"
