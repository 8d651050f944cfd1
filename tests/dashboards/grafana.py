"""The shipped Grafana dashboards as data: panels, queries, and queries made runnable.

Shared by the dashboard tests and the end-to-end test.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from tests.alerts.rules import ROOT

DASHBOARD_DIR = ROOT / "dashboards"
# File name -> uid. The uids are in links between the dashboards, in the alerts'
# dashboard_url and in users' bookmarks: they never change.
DASHBOARD_UIDS = {
    "openai-api-keys.json": "openai-api-keys",
    "openai-key-exporter-health.json": "openai-key-exporter-health",
    "openai-credentials.json": "openai-credentials",
    "openai-usage-and-spend.json": "openai-usage-and-spend",
}
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}

# What Grafana puts for its own interval variables when a query runs; any duration that
# covers a few scrapes does for checking that a query parses and returns data.
BUILTIN_VALUES = {
    "__rate_interval": "1m",
    "__interval": "1m",
    "__range": "1h",
}
_VARIABLE = re.compile(r"\$\{(\w+)(?::[\w]+)?\}|\$(\w+)|\[\[(\w+)\]\]")


@dataclass(frozen=True)
class Query:
    dashboard: str  # uid
    panel: str  # title
    ref_id: str
    expr: str

    @property
    def id(self) -> str:
        return f"{self.dashboard}/{self.panel}/{self.ref_id}"


def load(name: str) -> dict[str, Any]:
    dashboard = json.loads((DASHBOARD_DIR / name).read_text(encoding="utf-8"))
    assert isinstance(dashboard, dict)
    return dashboard


def dashboards() -> dict[str, dict[str, Any]]:
    """Every shipped dashboard by uid."""
    return {uid: load(name) for name, uid in DASHBOARD_UIDS.items()}


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, including those nested in collapsed rows."""
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def variables(dashboard: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {var["name"]: var for var in dashboard["templating"]["list"]}


def variable_names(text: str) -> set[str]:
    return {a or b or c for a, b, c in _VARIABLE.findall(text)}


def default_values(dashboard: dict[str, Any]) -> dict[str, str]:
    """The value each variable has on a fresh load with every selector on All."""
    values = dict(BUILTIN_VALUES)
    for name, var in variables(dashboard).items():
        if var["type"] == "textbox":
            values[name] = str(var["query"])
        elif var["type"] == "query":
            assert var.get("includeAll"), f"{name} has no All option"
            # Without an allValue Grafana sends every value it found, joined as a regex;
            # `.*` selects the same wherever the exporter is the only job (as in tests/e2e).
            values[name] = str(var.get("allValue") or ".*")
    return values


def substitute(expr: str, values: dict[str, str]) -> str:
    """The query as Grafana sends it, for the given variable values."""

    def replace(match: re.Match[str]) -> str:
        name = next(group for group in match.groups() if group)
        assert name in values, f"unknown variable ${name} in {expr!r}"
        return values[name]

    return _VARIABLE.sub(replace, expr)


def queries() -> list[Query]:
    """Every Prometheus query of every panel of every dashboard, as written."""
    found = []
    for uid, dashboard in dashboards().items():
        for panel in panels(dashboard):
            for target in panel.get("targets", []):
                found.append(Query(uid, panel["title"], target["refId"], target["expr"]))
    return found


def runnable(query: Query) -> str:
    """The query with the variables of its dashboard at their defaults."""
    return substitute(query.expr, default_values(dashboards()[query.dashboard]))


def project_regex(dashboard: dict[str, Any]) -> re.Pattern[str]:
    """The project variable's regex (a JavaScript regex in Grafana) in Python's syntax."""
    regex = str(variables(dashboard)["project"]["regex"])
    assert regex.startswith("/")
    assert regex.endswith("/")
    return re.compile(regex[1:-1].replace("(?<", "(?P<"))


def grafana_query_result_line(series: dict[str, str], value: str, timestamp_ms: int) -> str:
    """How Grafana prints one series of a `query_result()` variable query before its regex."""
    name = series.get("__name__", "")
    labels = ",".join(f'{k}="{v}"' for k, v in sorted(series.items()) if k != "__name__")
    return f"{name}{{{labels}}} {value} {timestamp_ms}"
