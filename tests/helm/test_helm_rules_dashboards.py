"""The chart's alert rules and dashboards come from alerts/ and dashboards/, and only there.

``files/openai-key-exporter.rules.yml`` and ``files/dashboards`` in the chart are symlinks to
the repository's files; Helm follows them when it loads or packages the chart. So there is
no copy to drift: these tests prove that the links are links, that a packaged chart carries
the real bytes, that the default PrometheusRule holds exactly the shipped rules but those the
chart switches off by default, that each override changes what it says and nothing else,
that promtool accepts every rendered rule set, and that each dashboard ConfigMap holds its
file byte for byte.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import helm_python
import pytest
import yaml

from tests.helm.chart import (
    CHART_DIR,
    NAMESPACE,
    RELEASE,
    ROOT,
    VALID,
    Doc,
    fixture_values,
    render_docs,
)

RULES_FILE = ROOT / "alerts" / "openai-key-exporter.rules.yml"
DASHBOARDS_DIR = ROOT / "dashboards"
DASHBOARDS = sorted(DASHBOARDS_DIR.glob("*.json"))
GRAFANA_STAND_IN = "https://grafana.example.com"
NUMBER = re.compile(r"(\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)")
# Alerts whose expression compares with one number, and the unit of that number.
THRESHOLD_UNITS = {
    "OpenAIApiKeyUnused": "days",
    "OpenAIApiKeyNeverUsed": "days",
    "OpenAIApiKeyRotationDue": "days",
    "OpenAIApiKeyRotationOverdue": "days",
    "OpenAIProjectTooManyKeys": "keys",
    "OpenAIAdminApiKeyExpiringSoon": "days",
    "OpenAIAdminApiKeyRotationDue": "days",
    "OpenAIExporterAdminKeyExpiring": "days",
    "OpenAICertificateExpiringSoon": "days",
    "OpenAICertificateExpired": "seconds",
    "OpenAIExporterDataStale": "seconds",
    "OpenAIExporterRateLimited": "errors",
    "OpenAIDormantApiKeyUsed": "days",
    "OpenAIApiKeyOfDepartedOwnerUsed": "requests",
    "OpenAIProjectSpendNearLimit": "percent",
    "OpenAIOrganizationSpendNearLimit": "percent",
    "OpenAIApiKeysCreatedBurst": "keys",
    "OpenAIApiKeyCreatedFromSession": "keys",
    "OpenAILoginFailures": "logins",
    "OpenAIIpAllowlistDeactivated": "deactivations",
    "OpenAIApiKeyScopesChanged": "updates",
}
# Alerts whose expression compares with several numbers: their units, in order. Their
# threshold override is a list of as many numbers.
THRESHOLD_LIST_UNITS = {
    "OpenAIAdminApiKeyUnused": ("days", "days"),
    "OpenAIApiKeyUsageSpike": ("tokens", "times"),
}
# Alerts with no number to compare with: a threshold override is refused.
NO_THRESHOLD = {
    "OpenAIApiKeyOwnerInactive",
    "OpenAIApiKeyOwnerLeftOrganization",
    "OpenAIAdminApiKeyNoExpiry",
    "OpenAIExporterDown",
    "OpenAIExporterCollectorFailing",
    "OpenAISpendLimitEnforcing",
    "OpenAIApiKeyUnrestricted",
    "OpenAIAuditLogUnavailable",
}
# Shipped alerts the chart's default values switch off (prometheusRule.alerts).
OFF_BY_DEFAULT = {"OpenAIApiKeyUnrestricted"}

Rule = dict[str, Any]


def shipped_groups() -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = yaml.safe_load(RULES_FILE.read_text(encoding="utf-8"))["groups"]
    return groups


def shipped_alerts() -> dict[str, Rule]:
    return {r["alert"]: r for g in shipped_groups() for r in g["rules"] if "alert" in r}


def default_groups() -> list[dict[str, Any]]:
    """The shipped groups minus the alerts the chart switches off by default."""
    return [
        {**g, "rules": [r for r in g["rules"] if r.get("alert") not in OFF_BY_DEFAULT]}
        for g in shipped_groups()
    ]


def switched_on(name: str, override: dict[str, Any]) -> dict[str, Any]:
    """An override of alert `name` that also switches it on where the defaults do not."""
    return {"enabled": True, **override} if name in OFF_BY_DEFAULT else override


SHIPPED_ALERT_NAMES = sorted(shipped_alerts())


def rule_groups(docs: list[Doc]) -> list[dict[str, Any]]:
    (rule,) = [doc for doc in docs if doc["kind"] == "PrometheusRule"]
    groups: list[dict[str, Any]] = rule["spec"]["groups"]
    return groups


def alerts_of(groups: list[dict[str, Any]]) -> dict[str, Rule]:
    return {r["alert"]: r for g in groups for r in g["rules"] if "alert" in r}


def changed_numbers(before: str, after: str) -> list[tuple[str, str, str]]:
    """(text before the number, old number, new number) for each number that differs; the
    text between numbers must be identical."""
    old, new = NUMBER.split(before), NUMBER.split(after)
    assert len(old) == len(new), (before, after)
    changes = []
    for index in range(len(old)):
        if index % 2 == 0:
            assert old[index] == new[index], (before, after)
        elif old[index] != new[index]:
            changes.append((old[index - 1], old[index], new[index]))
    return changes


# --- one source of truth ------------------------------------------------------------------


def test_chart_links_to_the_repository_files_instead_of_copying_them() -> None:
    rules_link = CHART_DIR / "files" / "openai-key-exporter.rules.yml"
    dashboards_link = CHART_DIR / "files" / "dashboards"
    assert rules_link.is_symlink()
    assert rules_link.resolve() == RULES_FILE.resolve()
    assert dashboards_link.is_symlink()
    assert dashboards_link.resolve() == DASHBOARDS_DIR.resolve()
    # And no stray copy anywhere in helm/ (a copy would be a regular file with the same bytes).
    sources = {RULES_FILE.read_bytes(), *(path.read_bytes() for path in DASHBOARDS)}
    for path in (ROOT / "helm").rglob("*"):
        if path.is_file() and not any(p.is_symlink() for p in [path, *path.parents]):
            assert path.read_bytes() not in sources, f"{path} is a copy"


def test_packaged_chart_carries_the_real_files(chart: helm_python.Chart, tmp_path: Path) -> None:
    archive = Path(helm_python.package(CHART_DIR, destination=tmp_path))
    with tarfile.open(archive) as tar:
        members = {member.name: member for member in tar.getmembers()}
        rules = members["openai-key-exporter/files/openai-key-exporter.rules.yml"]
        assert rules.isfile()
        extracted = tar.extractfile(rules)
        assert extracted is not None
        assert extracted.read() == RULES_FILE.read_bytes()
        for path in DASHBOARDS:
            member = members[f"openai-key-exporter/files/dashboards/{path.name}"]
            assert member.isfile()
            content = tar.extractfile(member)
            assert content is not None
            assert content.read() == path.read_bytes()
        assert not [name for name in members if "/ci/invalid/" in name]
        assert [name for name in members if "/ci/" in name]  # valid fixtures ship
    with helm_python.Chart.load(archive) as packaged:
        assert rule_groups(render_docs(packaged)) == rule_groups(render_docs(chart))


# --- the PrometheusRule -------------------------------------------------------------------


def test_default_prometheus_rule_holds_exactly_the_shipped_rules_but_those_off(
    chart: helm_python.Chart,
) -> None:
    groups = rule_groups(render_docs(chart))
    shipped = default_groups()
    assert [g["name"] for g in groups] == [g["name"] for g in shipped]
    rendered_alerts = alerts_of(groups)
    assert sorted(rendered_alerts) == sorted(set(SHIPPED_ALERT_NAMES) - OFF_BY_DEFAULT)
    assert len(SHIPPED_ALERT_NAMES) >= 10
    for name, rule in shipped_alerts().items():
        if name not in OFF_BY_DEFAULT:
            assert rendered_alerts[name]["expr"] == rule["expr"], name
    # Beyond names and expressions: every field of every rule, recording rules included.
    assert groups == shipped


@pytest.mark.parametrize("name", sorted(OFF_BY_DEFAULT))
def test_an_alert_off_by_default_comes_back_as_shipped(chart: helm_python.Chart, name: str) -> None:
    values = {"prometheusRule": {"alerts": {name: {"enabled": True}}}}
    groups = rule_groups(render_docs(chart, values))
    assert groups == shipped_groups()
    assert alerts_of(groups)[name] == shipped_alerts()[name]


def promtool_check(groups: list[dict[str, Any]], tmp_path: Path, name: str) -> int:
    rule_file = tmp_path / f"{name}.rules.yml"
    rule_file.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False), encoding="utf-8")
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: run scripts/install-system-deps.sh"
    result = subprocess.run(
        [promtool, "check", "rules", str(rule_file)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    found = re.search(r"SUCCESS: (\d+) rules found", result.stdout)
    assert found, result.stdout
    return int(found.group(1))


def test_promtool_accepts_every_rendered_rule_set(chart: helm_python.Chart, tmp_path: Path) -> None:
    shipped_count = sum(len(g["rules"]) for g in default_groups())
    assert promtool_check(rule_groups(render_docs(chart)), tmp_path, "defaults") == shipped_count
    checked = 1
    for path in VALID:
        docs = render_docs(chart, fixture_values(path.name))
        if any(doc["kind"] == "PrometheusRule" for doc in docs):
            groups = rule_groups(docs)
            count = sum(len(g["rules"]) for g in groups)
            assert promtool_check(groups, tmp_path, path.stem) == count
            checked += 1
    assert checked >= 4


def test_overrides_change_what_they_say_and_nothing_else(
    chart: helm_python.Chart, tmp_path: Path
) -> None:
    values = fixture_values("everything")
    groups = rule_groups(render_docs(chart, values))
    promtool_check(groups, tmp_path, "everything")
    rendered, shipped = alerts_of(groups), shipped_alerts()
    grafana = "https://grafana.internal.example.com"
    assert "OpenAIProjectTooManyKeys" not in rendered
    kept = sorted(set(shipped) - {"OpenAIProjectTooManyKeys"})
    assert sorted(rendered) == sorted([*kept, "OpenAIOrganizationTooManyKeys"])

    unused = rendered["OpenAIApiKeyUnused"]
    ((before, old, new),) = changed_numbers(shipped["OpenAIApiKeyUnused"]["expr"], unused["expr"])
    assert before.rstrip().endswith(">")
    assert (old, new) == ("90", "60")
    assert unused["for"] == "2h"
    assert unused["labels"] == {"severity": "critical", "team": "platform", "page": "true"}
    assert unused["annotations"]["dashboard_url"] == f"{grafana}/d/openai-api-keys"

    stale = rendered["OpenAIExporterDataStale"]
    ((_, old, new),) = changed_numbers(shipped["OpenAIExporterDataStale"]["expr"], stale["expr"])
    assert new == "1800.5"

    admin_unused = rendered["OpenAIAdminApiKeyUnused"]
    changes = changed_numbers(shipped["OpenAIAdminApiKeyUnused"]["expr"], admin_unused["expr"])
    assert [(old, new) for _, old, new in changes] == [("30", "60"), ("7", "14")]
    assert all(before.rstrip().endswith(">") for before, _, _ in changes)
    assert rendered["OpenAIApiKeyRotationOverdue"]["for"] == "30m"

    for name, rule in rendered.items():
        if name == "OpenAIOrganizationTooManyKeys":
            continue
        original = shipped[name]
        assert rule["labels"]["team"] == "platform"
        assert rule["annotations"]["playbook"] == "https://wiki.example.com/openai"
        if name in {"OpenAIApiKeyUnused", "OpenAIExporterDataStale", "OpenAIAdminApiKeyUnused"}:
            continue
        assert rule["expr"] == original["expr"], name
        assert rule["labels"] == {**original["labels"], "team": "platform"}, name
        expected = dict(original["annotations"])
        expected["dashboard_url"] = expected["dashboard_url"].replace(GRAFANA_STAND_IN, grafana)
        expected["playbook"] = "https://wiki.example.com/openai"
        assert rule["annotations"] == expected, name
        if name != "OpenAIApiKeyRotationOverdue":
            assert rule["for"] == original["for"], name

    assert groups[-1] == values["prometheusRule"]["extraGroups"][0]


def test_dashboard_urls_of_the_shipped_rules_use_the_grafana_stand_in() -> None:
    """prometheusRule.grafanaURL replaces this stand-in: without it the value would do
    nothing."""
    urls = [rule["annotations"]["dashboard_url"] for rule in shipped_alerts().values()]
    assert urls
    assert all(url.startswith(GRAFANA_STAND_IN + "/") for url in urls)


@pytest.mark.parametrize("name", SHIPPED_ALERT_NAMES)
def test_threshold_override_of_each_alert(
    chart: helm_python.Chart, name: str, tmp_path: Path
) -> None:
    # 13 is no shipped threshold, so the override always changes a number.
    values = {"prometheusRule": {"alerts": {name: switched_on(name, {"threshold": 13})}}}
    if name not in THRESHOLD_UNITS:
        with pytest.raises(helm_python.HelmError, match="no single threshold to replace"):
            render_docs(chart, values)
        return
    listed = {"prometheusRule": {"alerts": {name: {"threshold": [7, 8]}}}}
    with pytest.raises(helm_python.HelmError, match="but 2 thresholds are given"):
        render_docs(chart, listed)
    groups = rule_groups(render_docs(chart, values))
    rule = alerts_of(groups)[name]
    ((before, _, new),) = changed_numbers(shipped_alerts()[name]["expr"], rule["expr"])
    assert new == "13"
    assert before.rstrip().endswith((">", "<", ">=", "<="))
    promtool_check(groups, tmp_path, name)


@pytest.mark.parametrize("name", sorted(THRESHOLD_LIST_UNITS))
def test_threshold_list_override_of_each_alert_with_several(
    chart: helm_python.Chart, name: str, tmp_path: Path
) -> None:
    count = len(THRESHOLD_LIST_UNITS[name])
    with pytest.raises(helm_python.HelmError, match=f"give a list of {count} numbers"):
        render_docs(chart, {"prometheusRule": {"alerts": {name: {"threshold": 7}}}})
    with pytest.raises(helm_python.HelmError, match=f"but {count - 1} thresholds are given"):
        render_docs(chart, {"prometheusRule": {"alerts": {name: {"threshold": [7] * (count - 1)}}}})
    wanted = [str(11 + index) for index in range(count)]
    values = {"prometheusRule": {"alerts": {name: {"threshold": [int(n) for n in wanted]}}}}
    groups = rule_groups(render_docs(chart, values))
    changes = changed_numbers(shipped_alerts()[name]["expr"], alerts_of(groups)[name]["expr"])
    assert [new for _, _, new in changes] == wanted
    assert all(before.rstrip().endswith((">", "<", ">=", "<=")) for before, _, _ in changes)
    promtool_check(groups, tmp_path, name)


def test_every_shipped_alert_has_a_known_threshold_behaviour() -> None:
    """A new alert must be added to THRESHOLD_UNITS or THRESHOLD_LIST_UNITS (and to
    docs/deployment.md) or be known to have no threshold."""
    known = set(THRESHOLD_UNITS) | set(THRESHOLD_LIST_UNITS) | NO_THRESHOLD
    assert set(SHIPPED_ALERT_NAMES) == known
    assert len(known) == len(THRESHOLD_UNITS) + len(THRESHOLD_LIST_UNITS) + len(NO_THRESHOLD)
    docs = (ROOT / "docs" / "deployment.md").read_text(encoding="utf-8")
    units = {**THRESHOLD_UNITS, **{n: " ".join(u) for n, u in THRESHOLD_LIST_UNITS.items()}}
    for name, unit in units.items():
        for word in unit.split():
            assert re.search(rf"`{name}`.*\b{word}\b", docs), f"{name} ({unit}) not in the docs"
    no_threshold_line = re.search(r"^((?:`OpenAI\w+`,? (?:and )?)+)compare", docs, re.MULTILINE)
    assert no_threshold_line, "docs/deployment.md lists the alerts without a threshold"
    assert set(re.findall(r"`(OpenAI\w+)`", no_threshold_line.group(1))) == NO_THRESHOLD


@pytest.mark.parametrize("name", SHIPPED_ALERT_NAMES)
def test_severity_for_labels_and_disable_of_each_alert(chart: helm_python.Chart, name: str) -> None:
    override = {"severity": "info", "for": "7m", "labels": {"x": "y"}, "annotations": {"a": "b"}}
    values = {"prometheusRule": {"alerts": {name: switched_on(name, override)}}}
    rule = alerts_of(rule_groups(render_docs(chart, values)))[name]
    original = shipped_alerts()[name]
    assert rule["expr"] == original["expr"]
    assert rule["for"] == "7m"
    assert rule["labels"] == {**original["labels"], "severity": "info", "x": "y"}
    assert rule["annotations"] == {**original["annotations"], "a": "b"}
    disabled = {"prometheusRule": {"alerts": {name: {"enabled": False}}}}
    remaining = alerts_of(rule_groups(render_docs(chart, disabled)))
    assert sorted(remaining) == sorted(set(SHIPPED_ALERT_NAMES) - {name} - OFF_BY_DEFAULT)


def test_disabling_every_alert_keeps_the_recording_rules(chart: helm_python.Chart) -> None:
    values = {
        "prometheusRule": {"alerts": {name: {"enabled": False} for name in SHIPPED_ALERT_NAMES}}
    }
    groups = rule_groups(render_docs(chart, values))
    records = [r for g in shipped_groups() for r in g["rules"] if "record" in r]
    assert [r for g in groups for r in g["rules"]] == records
    assert all(group["rules"] for group in groups)  # no group left empty


# --- dashboards ---------------------------------------------------------------------------


def dashboard_maps(docs: list[Doc]) -> list[Doc]:
    return [
        doc
        for doc in docs
        if doc["kind"] == "ConfigMap" and "-dashboard-" in doc["metadata"]["name"]
    ]


def test_dashboard_config_maps_are_byte_identical_to_the_files(
    chart: helm_python.Chart,
) -> None:
    maps = dashboard_maps(render_docs(chart))
    assert len(DASHBOARDS) >= 2
    assert len(maps) == len(DASHBOARDS)
    names = sorted(cm["metadata"]["name"] for cm in maps)
    assert names == [
        f"{RELEASE}-openai-key-exporter-dashboard-{name}"
        for name in (
            "openai-api-keys",
            "openai-credentials",
            "openai-key-exporter-health",
            "openai-usage-and-spend",
        )
    ]
    by_key = {key: value for cm in maps for key, value in cm["data"].items()}
    assert sorted(by_key) == [path.name for path in DASHBOARDS]
    for path in DASHBOARDS:
        assert by_key[path.name].encode("utf-8") == path.read_bytes(), path.name
    for cm in maps:
        assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert cm["metadata"]["annotations"]["grafana_folder"] == "OpenAI"
        assert cm["metadata"]["namespace"] == NAMESPACE
        size = sum(len(value.encode()) for value in cm["data"].values())
        assert size < 900 * 1024, "a ConfigMap holds at most 1 MiB"


def test_dashboard_label_folder_and_namespace_are_configurable(chart: helm_python.Chart) -> None:
    maps = dashboard_maps(render_docs(chart, fixture_values("no-operator")))
    assert len(maps) == len(DASHBOARDS)
    for cm in maps:
        assert cm["metadata"]["namespace"] == "grafana"
        assert cm["metadata"]["labels"]["grafana.com/dashboard"] == "openai"
        assert "grafana_dashboard" not in cm["metadata"]["labels"]
        assert cm["metadata"]["annotations"] == {"grafana.com/folder": "Security / OpenAI"}
    assert dashboard_maps(render_docs(chart, {"dashboards": {"enabled": False}})) == []
