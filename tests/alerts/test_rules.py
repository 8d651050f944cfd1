"""The shipped alert rules, proven with promtool and amtool (never mocked)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.alerts.rules import (
    ADMIN_KEY_ALERTS,
    ALERTMANAGER_EXAMPLE,
    AMTOOL,
    AUDIT_ALERTS,
    CERTIFICATE_ALERTS,
    COLLECTOR_ALERTS,
    CONTRACT_METRICS,
    CREDENTIAL_ALERTS,
    DASHBOARDS_DOC,
    EXPORTER_ALERTS,
    KEY_ALERTS,
    PROJECT_ALERTS,
    PROMETHEUS_METRICS,
    PROMTOOL,
    RULE_TESTS_DIR,
    RULES_FILE,
    RUNBOOK,
    RUNBOOK_URL,
    SPEND_ALERTS,
    USAGE_ALERTS,
    USAGE_KEY_ALERTS,
    Rule,
    alerts,
    duration_seconds,
    load_rule_document,
    load_rules,
    metric_names,
    recording_rule_names,
    require_tool,
    runbook_anchors,
)

# Every shipped alert, by name and severity. An alert renamed or removed by accident
# breaks this list; a deliberate change updates it (and the runbook, and the docs).
SHIPPED_ALERTS = {
    "OpenAIApiKeyUnused": "warning",
    "OpenAIApiKeyNeverUsed": "warning",
    "OpenAIApiKeyRotationDue": "warning",
    "OpenAIApiKeyRotationOverdue": "critical",
    "OpenAIApiKeyOwnerInactive": "warning",
    "OpenAIApiKeyOwnerLeftOrganization": "warning",
    "OpenAIProjectTooManyKeys": "info",
    "OpenAIAdminApiKeyNoExpiry": "warning",
    "OpenAIAdminApiKeyExpiringSoon": "warning",
    "OpenAIAdminApiKeyUnused": "warning",
    "OpenAIAdminApiKeyRotationDue": "warning",
    "OpenAIExporterAdminKeyExpiring": "critical",
    "OpenAICertificateExpiringSoon": "warning",
    "OpenAICertificateExpired": "critical",
    "OpenAIExporterDown": "critical",
    "OpenAIExporterCollectorFailing": "warning",
    "OpenAIExporterDataStale": "warning",
    "OpenAIExporterRateLimited": "info",
    "OpenAIDormantApiKeyUsed": "critical",
    "OpenAIApiKeyOfDepartedOwnerUsed": "critical",
    "OpenAIApiKeyUsageSpike": "warning",
    "OpenAIProjectSpendNearLimit": "warning",
    "OpenAIOrganizationSpendNearLimit": "warning",
    "OpenAISpendLimitEnforcing": "critical",
    "OpenAIApiKeysCreatedBurst": "warning",
    "OpenAIApiKeyCreatedFromSession": "info",
    "OpenAILoginFailures": "warning",
    "OpenAIIpAllowlistDeactivated": "critical",
    "OpenAIApiKeyScopesChanged": "info",
    "OpenAIApiKeyUnrestricted": "info",
    "OpenAIAuditLogUnavailable": "warning",
}
SHIPPED_RECORDING_RULES = {
    "openai_api_key:info",
    "openai_api_key:age_seconds",
    "openai_api_key:idle_seconds",
    "openai_api_key:never_used",
    "openai_api_key:usage_tokens:rate1h",
    "openai_admin_api_key:age_seconds",
    "openai_admin_api_key:idle_seconds",
    "openai_audit_events:increase1h",
    "openai_audit_events:increase15m",
}
GRAFANA_URL = "https://grafana.example.com"
DASHBOARD_OF = {
    **dict.fromkeys(KEY_ALERTS + PROJECT_ALERTS, "openai-api-keys"),
    **dict.fromkeys(EXPORTER_ALERTS, "openai-key-exporter-health"),
    **dict.fromkeys(CREDENTIAL_ALERTS, "openai-credentials"),
    **dict.fromkeys(USAGE_ALERTS, "openai-usage-and-spend"),
    # The Security events row; the audit log's own health is the exporter's.
    **dict.fromkeys(AUDIT_ALERTS, "openai-credentials"),
    "OpenAIAuditLogUnavailable": "openai-key-exporter-health",
    # A project key, but its owner's membership is on the credentials dashboard.
    "OpenAIApiKeyOwnerLeftOrganization": "openai-credentials",
}

# Moves of each threshold, one each way: the unit tests must notice every one.
THRESHOLD_MUTATIONS = [
    ("OpenAIApiKeyUnused", "90 * 86400", "88 * 86400"),
    ("OpenAIApiKeyUnused", "90 * 86400", "101 * 86400"),
    ("OpenAIApiKeyNeverUsed", "30 * 86400", "28 * 86400"),
    ("OpenAIApiKeyNeverUsed", "30 * 86400", "41 * 86400"),
    ("OpenAIApiKeyRotationDue", "180 * 86400", "178 * 86400"),
    ("OpenAIApiKeyRotationDue", "180 * 86400", "201 * 86400"),
    ("OpenAIApiKeyRotationOverdue", "365 * 86400", "364 * 86400"),
    ("OpenAIApiKeyRotationOverdue", "365 * 86400", "401 * 86400"),
    ("OpenAIApiKeyOwnerInactive", '"inactive"', '"active"'),
    ("OpenAIApiKeyOwnerLeftOrganization", "== 0", "== 1"),
    ("OpenAIProjectTooManyKeys", "> 50", "> 49"),
    ("OpenAIProjectTooManyKeys", "> 50", "> 51"),
    ("OpenAIAdminApiKeyNoExpiry", "== 1", "== 0"),
    ("OpenAIAdminApiKeyExpiringSoon", "14 * 86400", "9 * 86400"),
    ("OpenAIAdminApiKeyExpiringSoon", "14 * 86400", "16 * 86400"),
    ("OpenAIAdminApiKeyUnused", "30 * 86400", "28 * 86400"),
    ("OpenAIAdminApiKeyUnused", "30 * 86400", "41 * 86400"),
    ("OpenAIAdminApiKeyUnused", "7 * 86400", "6 * 86400"),
    ("OpenAIAdminApiKeyUnused", "7 * 86400", "9 * 86400"),
    ("OpenAIAdminApiKeyUnused", "== 1", "== 0"),
    ("OpenAIAdminApiKeyRotationDue", "180 * 86400", "178 * 86400"),
    ("OpenAIAdminApiKeyRotationDue", "180 * 86400", "201 * 86400"),
    ("OpenAIExporterAdminKeyExpiring", "7 * 86400", "4 * 86400"),
    ("OpenAIExporterAdminKeyExpiring", "7 * 86400", "8 * 86400"),
    ("OpenAICertificateExpiringSoon", "30 * 86400", "19 * 86400"),
    ("OpenAICertificateExpiringSoon", "30 * 86400", "31 * 86400"),
    ("OpenAICertificateExpiringSoon", '"true"', '"false"'),
    ("OpenAICertificateExpired", "> 0", "> -3000000"),
    ("OpenAICertificateExpired", "> 0", "> 100000"),
    ("OpenAICertificateExpired", '"true"', '"false"'),
    ("OpenAIExporterDown", "== 0", "== 1"),
    ("OpenAIExporterCollectorFailing", "== 0", "== 1"),
    ("OpenAIExporterDataStale", "> 3600", "> 2900"),
    ("OpenAIExporterDataStale", "> 3600", "> 4900"),
    ("OpenAIExporterRateLimited", "> 0", "> -1"),
    ("OpenAIExporterRateLimited", "> 0", "> 15"),
    ("OpenAIExporterRateLimited", '"rate_limited"', '"server_error"'),
    ("OpenAIDormantApiKeyUsed", "30 * 86400", "29 * 86400"),
    ("OpenAIDormantApiKeyUsed", "30 * 86400", "31 * 86400"),
    ("OpenAIDormantApiKeyUsed", "offset 1h == 1", "offset 1h == 0"),
    ("OpenAIApiKeyOfDepartedOwnerUsed", "> 0", "> -1"),
    ("OpenAIApiKeyOfDepartedOwnerUsed", "> 0", "> 20"),
    ("OpenAIApiKeyOfDepartedOwnerUsed", '"inactive"', '"active"'),
    ("OpenAIApiKeyOfDepartedOwnerUsed", "== 0", "== 1"),
    ("OpenAIApiKeyUsageSpike", "> 1000", "> 800"),
    ("OpenAIApiKeyUsageSpike", "> 1000", "> 20000"),
    ("OpenAIApiKeyUsageSpike", "> 5", "> 2"),
    ("OpenAIApiKeyUsageSpike", "> 5", "> 20"),
    ("OpenAIProjectSpendNearLimit", ">= 80", ">= 79"),
    ("OpenAIProjectSpendNearLimit", ">= 80", ">= 81"),
    ("OpenAIOrganizationSpendNearLimit", ">= 80", ">= 79"),
    ("OpenAIOrganizationSpendNearLimit", ">= 80", ">= 81"),
    (
        "OpenAISpendLimitEnforcing",
        "openai_organization_spend_limit_enforcing == 1",
        "openai_organization_spend_limit_enforcing == 0",
    ),
    (
        "OpenAISpendLimitEnforcing",
        "openai_project_spend_limit_enforcing == 1",
        "openai_project_spend_limit_enforcing == 0",
    ),
    ("OpenAIApiKeysCreatedBurst", "> 10", "> 9"),
    ("OpenAIApiKeysCreatedBurst", "> 10", "> 11"),
    ("OpenAIApiKeysCreatedBurst", '"api_key.created"', '"api_key.deleted"'),
    ("OpenAIApiKeyCreatedFromSession", "> 0", "> -1"),
    ("OpenAIApiKeyCreatedFromSession", "> 0", "> 1"),
    ("OpenAIApiKeyCreatedFromSession", '"session"', '"user_api_key"'),
    ("OpenAILoginFailures", "> 5", "> 4"),
    ("OpenAILoginFailures", "> 5", "> 6"),
    ("OpenAILoginFailures", '"login.failed"', '"login.succeeded"'),
    ("OpenAIIpAllowlistDeactivated", "> 0", "> -1"),
    ("OpenAIIpAllowlistDeactivated", "> 0", "> 1"),
    ("OpenAIIpAllowlistDeactivated", "config.deactivated", "config.activated"),
    ("OpenAIApiKeyScopesChanged", "> 0", "> -1"),
    ("OpenAIApiKeyScopesChanged", "> 0", "> 1"),
    ("OpenAIApiKeyScopesChanged", '"api_key.updated"', '"api_key.created"'),
    ("OpenAIApiKeyUnrestricted", 'scopes=""', 'scopes!=""'),
    ("OpenAIAuditLogUnavailable", "== 0", "== 1"),
    ("OpenAIAuditLogUnavailable", '"audit_logs"', '"api_keys"'),
]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)


def rule_test_files() -> list[Path]:
    files = sorted(RULE_TESTS_DIR.glob("*.test.yml"))
    assert files, f"no promtool test files in {RULE_TESTS_DIR}"
    return files


def alert_cases(path: Path) -> list[dict[str, Any]]:
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    return [case for test in document["tests"] for case in test.get("alert_rule_test") or []]


def all_alert_cases() -> list[dict[str, Any]]:
    return [case for path in rule_test_files() for case in alert_cases(path)]


# --------------------------------------------------------------------------- promtool


def test_promtool_check_rules() -> None:
    result = run(require_tool(PROMTOOL), "check", "rules", str(RULES_FILE))
    assert result.returncode == 0, result.stdout + result.stderr
    total = len(SHIPPED_ALERTS) + len(SHIPPED_RECORDING_RULES)
    assert f"SUCCESS: {total} rules found" in result.stdout


def test_promtool_unit_tests_pass() -> None:
    files = [str(path) for path in rule_test_files()]
    result = run(require_tool(PROMTOOL), "test", "rules", *files)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(files)


def test_shipped_alert_names_are_exactly_these() -> None:
    assert {name: rule.labels.get("severity") for name, rule in alerts().items()} == (
        SHIPPED_ALERTS
    )
    groups = (
        KEY_ALERTS
        + PROJECT_ALERTS
        + CREDENTIAL_ALERTS
        + EXPORTER_ALERTS
        + USAGE_ALERTS
        + AUDIT_ALERTS
    )
    assert sorted(groups) == sorted(SHIPPED_ALERTS), "each alert in exactly one group"
    assert set(ADMIN_KEY_ALERTS + CERTIFICATE_ALERTS) == set(CREDENTIAL_ALERTS)
    assert set(USAGE_KEY_ALERTS + SPEND_ALERTS) == set(USAGE_ALERTS)
    assert set(COLLECTOR_ALERTS) <= set(EXPORTER_ALERTS)


def test_shipped_recording_rules_are_exactly_these() -> None:
    assert recording_rule_names() == SHIPPED_RECORDING_RULES


def test_rule_names_are_unique() -> None:
    names = [rule.name for rule in load_rules()]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("rule", load_rules(), ids=lambda rule: rule.name)
def test_rule_uses_only_contract_metrics(rule: Rule) -> None:
    known = CONTRACT_METRICS | PROMETHEUS_METRICS | recording_rule_names()
    used = metric_names(rule.expr)
    assert used, f"{rule.name} selects no metric"
    assert used <= known, f"{rule.name} uses unknown metrics {used - known}"


def test_recording_rules_come_before_their_users_in_the_same_group() -> None:
    """Rules of a group run in order: a recording rule read by a later rule of the same
    group is fresh. Across groups it would lag one evaluation."""
    for group in load_rule_document()["groups"]:
        recorded: set[str] = set()
        for raw in group["rules"]:
            rule = Rule(group=group["name"], raw=raw)
            used = metric_names(rule.expr) & recording_rule_names()
            assert used <= recorded, f"{rule.name} reads {used - recorded} before it is recorded"
            if not rule.is_alert:
                recorded.add(rule.name)


# The Helm chart overrides an alert's thresholds by rewriting the numbers after the ordering
# comparisons (>, >=, <, <=) of its expression, in order: keep exactly one where there is a
# numeric threshold, none where there is not, and know the alerts with more than one.
_ORDERING_COMPARISON = re.compile(r"(>=|<=|>|<)\s*(bool\s+)?-?[0-9]")
WITHOUT_NUMERIC_THRESHOLD = {
    "OpenAIApiKeyOwnerInactive",
    "OpenAIApiKeyOwnerLeftOrganization",
    "OpenAIAdminApiKeyNoExpiry",
    "OpenAIExporterDown",
    "OpenAIExporterCollectorFailing",
    "OpenAISpendLimitEnforcing",
    "OpenAIApiKeyUnrestricted",
    "OpenAIAuditLogUnavailable",
}
# OpenAIAdminApiKeyUnused: idle days of used keys, then age in days of never-used ones.
# OpenAIApiKeyUsageSpike: the floor in tokens per minute, then the factor over the baseline.
WITH_TWO_THRESHOLDS = {"OpenAIAdminApiKeyUnused", "OpenAIApiKeyUsageSpike"}


@pytest.mark.parametrize("name", sorted(SHIPPED_ALERTS))
def test_threshold_is_the_single_ordering_comparison(name: str) -> None:
    found = _ORDERING_COMPARISON.findall(alerts()[name].expr)
    expected = 0 if name in WITHOUT_NUMERIC_THRESHOLD else 2 if name in WITH_TWO_THRESHOLDS else 1
    assert len(found) == expected


# --------------------------------------------------------------- conventions


@pytest.mark.parametrize("name", sorted(SHIPPED_ALERTS))
def test_alert_conventions(name: str) -> None:
    rule = alerts()[name]
    assert re.fullmatch(
        r"OpenAI(ApiKeys?|DormantApiKey|Project|Organization|Spend|AdminApiKey|Certificate|Exporter"
        r"|Login|IpAllowlist|AuditLog)[A-Z][A-Za-z]+",
        name,
    )
    assert rule.for_ is not None, f"{name} has no for:"
    assert duration_seconds(rule.for_) > 0
    assert set(rule.labels) == {"severity"}
    assert set(rule.annotations) == {"summary", "description", "runbook_url", "dashboard_url"}

    summary = rule.annotations["summary"]
    assert "{{" not in summary, "summary must be static"
    assert "$" not in summary, "summary must be static"
    assert summary.endswith("."), "summary ends with a period"
    assert summary[0].isupper()

    description = rule.annotations["description"]
    if name in KEY_ALERTS + USAGE_KEY_ALERTS:
        needed = ["project_name", "project_id", "api_key_name", "api_key_id", "owner_name"]
    elif name in PROJECT_ALERTS or name == "OpenAIProjectSpendNearLimit":
        needed = ["project_name", "project_id"]
    elif name in ADMIN_KEY_ALERTS:
        needed = ["admin_api_key_name", "admin_api_key_id"]
    elif name in CERTIFICATE_ALERTS:
        needed = ["certificate_name", "certificate_id"]
    elif name in COLLECTOR_ALERTS or name == "OpenAIAuditLogUnavailable":
        needed = ["job", "collector"]
    elif name in AUDIT_ALERTS:
        needed = AUDIT_DESCRIPTION_LABELS[name]
    else:
        needed = ["job"]
    for label in needed:
        assert "{{ $labels." + label + " }}" in description, f"{name} description lacks {label}"
    # One style everywhere: the organization first, and only when the label is there.
    assert description.startswith(ORGANIZATION_PREFIX), f"{name} does not name the organization"

    assert rule.annotations["runbook_url"] == f"{RUNBOOK_URL}#{name.lower()}"
    dashboard_url = rule.annotations["dashboard_url"]
    uid = DASHBOARD_OF[name]
    assert dashboard_url.startswith(f"{GRAFANA_URL}/d/{uid}/{uid}")


ORGANIZATION_PREFIX = (
    "{{ if $labels.organization }}Organization {{ $labels.organization }}: {{ end }}"
)


# What each audit alert's description names. The audit metrics carry no email, IP address
# or user id, and a description prints only these labels.
AUDIT_DESCRIPTION_LABELS = {
    "OpenAIApiKeysCreatedBurst": ["job", "instance"],
    "OpenAIApiKeyCreatedFromSession": ["project_id", "actor_type"],
    "OpenAILoginFailures": ["job", "instance"],
    "OpenAIIpAllowlistDeactivated": ["job", "instance", "actor_type"],
    "OpenAIApiKeyScopesChanged": ["project_id", "actor_type"],
    "OpenAIApiKeyUnrestricted": ["project_id", "api_key_id"],
}


@pytest.mark.parametrize("name", AUDIT_ALERTS)
def test_audit_alert_descriptions_print_no_personal_data(name: str) -> None:
    printed = re.findall(r"\$labels\.(\w+)", alerts()[name].annotations["description"])
    allowed = {
        "job",
        "instance",
        "organization",
        "collector",
        "project_id",
        "actor_type",
        "api_key_id",
    }
    assert printed, name
    assert set(printed) <= allowed, f"{name} prints {set(printed) - allowed}"


@pytest.mark.parametrize("name", sorted(SHIPPED_ALERTS))
def test_runbook_has_a_section_per_alert(name: str) -> None:
    anchor = alerts()[name].annotations["runbook_url"].split("#", 1)[1]
    assert anchor in runbook_anchors()
    section = RUNBOOK.read_text(encoding="utf-8").split(f"## {name}\n", 1)[1].split("\n## ")[0]
    for part in ("**Meaning.**", "**Check", "**Fix"):
        assert part in section, f"runbook section {name} lacks {part}"


def test_runbook_links_resolve() -> None:
    links = set(re.findall(r"\]\(#([^)]+)\)", RUNBOOK.read_text(encoding="utf-8")))
    assert links, "the runbook links its own sections"
    assert links <= runbook_anchors()


def documented_alerts() -> dict[str, list[str]]:
    """Rows of the alert table of docs/dashboards-and-alerts.md, by alert name."""
    rows: dict[str, list[str]] = {}
    for line in DASHBOARDS_DOC.read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 5 and re.fullmatch(r"`OpenAI\w+`", cells[0]):
            rows[cells[0].strip("`")] = cells[1:]
    return rows


def test_docs_table_matches_the_rules() -> None:
    """The Helm chart and users change thresholds from this table: it must be true."""
    rows = documented_alerts()
    assert set(rows) == set(SHIPPED_ALERTS)
    for name, (severity, _fires_when, threshold, for_) in rows.items():
        rule = alerts()[name]
        assert severity == rule.labels["severity"], name
        literal = re.match(r"`([^`]+)`", threshold)
        assert literal, f"{name}: the threshold cell starts with the literal in backticks"
        assert literal.group(1) in rule.expr, f"{name}: {literal.group(1)!r} not in expr"
        assert for_ == f"`{rule.for_}`", name


# ------------------------------------------------------- unit test coverage


@pytest.mark.parametrize("name", sorted(SHIPPED_ALERTS))
def test_every_alert_has_a_firing_case_with_labels_and_annotations(name: str) -> None:
    rule = alerts()[name]
    firing = [
        case for case in all_alert_cases() if case["alertname"] == name and case["exp_alerts"]
    ]
    assert firing, f"no promtool case where {name} fires"
    for case in firing:
        for expected in case["exp_alerts"]:
            assert expected["exp_labels"]["severity"] == rule.labels["severity"]
            assert set(expected["exp_annotations"]) == set(rule.annotations)
            if name in KEY_ALERTS + USAGE_KEY_ALERTS:
                for label in ("project_name", "api_key_name", "owner_name", "owner_type"):
                    assert label in expected["exp_labels"], f"{name} case lacks {label}"
            if name in ADMIN_KEY_ALERTS:
                for label in ("admin_api_key_name", "owner_name", "owner_type", "owner_role"):
                    assert label in expected["exp_labels"], f"{name} case lacks {label}"
            if name in CERTIFICATE_ALERTS:
                assert "certificate_name" in expected["exp_labels"], f"{name} lacks its name"
            if name in COLLECTOR_ALERTS or name == "OpenAIAuditLogUnavailable":
                assert "collector" in expected["exp_labels"], f"{name} case lacks collector"


@pytest.mark.parametrize("name", sorted(SHIPPED_ALERTS))
def test_every_alert_has_a_silent_case_past_its_for(name: str) -> None:
    """Silent although `for:` has passed: below the threshold, not merely too early.
    Silence before `for:` is proven by the mutations below."""
    for_seconds = duration_seconds(alerts()[name].for_ or "0s")
    silent = [
        case
        for case in all_alert_cases()
        if case["alertname"] == name
        and not case["exp_alerts"]
        and duration_seconds(case["eval_time"]) >= for_seconds
    ]
    assert silent, f"no promtool case where {name} must not fire past its for:"


def mutated_run(tmp_path: Path, name: str, change: dict[str, str]) -> str:
    """Runs the unit tests against a copy of the rules where alert `name` has `change`."""
    document = load_rule_document()
    for group in document["groups"]:
        for raw in group["rules"]:
            if raw.get("alert") == name:
                for key, value in change.items():
                    if value:
                        raw[key] = value
                    else:
                        del raw[key]
    (tmp_path / RULES_FILE.name).write_text(yaml.safe_dump(document), encoding="utf-8")
    tests_dir = tmp_path / RULE_TESTS_DIR.name
    tests_dir.mkdir()
    relevant = [
        shutil.copy(path, tests_dir)
        for path in rule_test_files()
        if any(case["alertname"] == name for case in alert_cases(path))
    ]
    result = run(require_tool(PROMTOOL), "test", "rules", *map(str, relevant))
    assert result.returncode != 0, f"the unit tests did not notice {name} changed by {change}"
    return result.stdout + result.stderr


@pytest.mark.parametrize("name", sorted(SHIPPED_ALERTS))
def test_unit_tests_notice_a_missing_for(tmp_path: Path, name: str) -> None:
    output = mutated_run(tmp_path, name, {"for": ""})
    assert f"alertname: {name}," in output


@pytest.mark.parametrize(
    ("name", "literal", "replacement"),
    THRESHOLD_MUTATIONS,
    ids=[f"{n}:{a}->{b}" for n, a, b in THRESHOLD_MUTATIONS],
)
def test_unit_tests_notice_a_moved_threshold(
    tmp_path: Path, name: str, literal: str, replacement: str
) -> None:
    expr = alerts()[name].expr
    assert expr.count(literal) == 1
    output = mutated_run(tmp_path, name, {"expr": expr.replace(literal, replacement)})
    assert f"alertname: {name}," in output


def test_every_numeric_threshold_is_moved_both_ways() -> None:
    assert {name for name, _, _ in THRESHOLD_MUTATIONS} == set(SHIPPED_ALERTS)
    for name, literal in {(n, a) for n, a, _ in THRESHOLD_MUTATIONS}:
        if not re.fullmatch(r"(?:[<>]=? )?-?\d+(?: \* 86400)?", literal):
            continue  # a label value or an equality, not a threshold
        moved = sorted(
            int(re.findall(r"-?\d+", b)[0])
            for n, a, b in THRESHOLD_MUTATIONS
            if (n, a) == (name, literal)
        )
        assert moved[0] < int(re.findall(r"-?\d+", literal)[0]) < moved[-1], (name, literal)


# --------------------------------------------------------------- Alertmanager


def test_amtool_check_config() -> None:
    result = run(require_tool(AMTOOL), "check-config", str(ALERTMANAGER_EXAMPLE))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
    assert "5 inhibit rules" in result.stdout


def receiver_for(*labels: str) -> str:
    """The receiver the example configuration routes an alert with these labels to."""
    result = run(
        require_tool(AMTOOL),
        "config",
        "routes",
        "test",
        f"--config.file={ALERTMANAGER_EXAMPLE}",
        *labels,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.strip()


@pytest.mark.parametrize("name", sorted(SHIPPED_ALERTS))
def test_alertmanager_routes_each_alert_by_severity(name: str) -> None:
    severity = alerts()[name].labels["severity"]
    receiver = receiver_for(f"alertname={name}", f"severity={severity}", "project_id=proj_x")
    assert receiver == f"openai-{severity}"


def test_alertmanager_leaves_other_alerts_to_the_default_route() -> None:
    assert receiver_for("alertname=NodeDown", "severity=critical") == "default"


def test_alertmanager_groups_openai_alerts_by_organization_and_project() -> None:
    """One group per organization and project; without /probe there is no organization
    label, and the grouping is by project alone."""
    config = yaml.safe_load(ALERTMANAGER_EXAMPLE.read_text(encoding="utf-8"))
    (openai_route,) = [
        route
        for route in config["route"]["routes"]
        if 'alertname =~ "OpenAI.+"' in route["matchers"]
    ]
    assert openai_route["group_by"] == ["organization", "project_id"]
    for child in openai_route["routes"]:
        assert "group_by" not in child, "children inherit the grouping by project"


def firing_labels(name: str) -> list[dict[str, str]]:
    """The labels of every alert `name` the promtool cases expect to fire."""
    return [
        {str(k): str(v) for k, v in expected["exp_labels"].items()}
        for case in all_alert_cases()
        if case["alertname"] == name
        for expected in case["exp_alerts"]
    ]


_MATCHER = re.compile(r'^(\w+) (=~|=) "(.*)"$')


def matched_alert(matchers: list[str]) -> tuple[str, list[tuple[str, str, str]]]:
    """The alertname an inhibit rule's matchers name, and their other matchers."""
    parsed = []
    for matcher in matchers:
        found = _MATCHER.match(matcher)
        assert found, f"unexpected matcher {matcher!r}"
        parsed.append((found.group(1), found.group(2), found.group(3)))
    (name,) = [value for label, op, value in parsed if label == "alertname" and op == "="]
    return name, [m for m in parsed if m[0] != "alertname"]


def matches(labels: dict[str, str], matchers: list[tuple[str, str, str]]) -> bool:
    """Alertmanager's reading: a missing label is the empty string; =~ is anchored."""
    return all(
        labels.get(label, "") == value
        if op == "="
        else re.fullmatch(value, labels.get(label, "")) is not None
        for label, op, value in matchers
    )


def test_each_inhibition_mutes_a_lesser_alert_about_the_same_subject() -> None:
    """An inhibit rule names shipped alerts, a source more severe than its target, and
    `equal` labels that both carry (a label missing on both sides would match everything),
    and `organization` (absent with one organization, where job and instance decide), so
    that one organization never mutes another's alert."""
    config = yaml.safe_load(ALERTMANAGER_EXAMPLE.read_text(encoding="utf-8"))
    rank = {"info": 0, "warning": 1, "critical": 2}
    pairs = set()
    for rule in config["inhibit_rules"]:
        source, source_matchers = matched_alert(rule["source_matchers"])
        target, target_matchers = matched_alert(rule["target_matchers"])
        assert rank[SHIPPED_ALERTS[source]] > rank[SHIPPED_ALERTS[target]], (source, target)
        for name, extra in ((source, source_matchers), (target, target_matchers)):
            cases = [labels for labels in firing_labels(name) if matches(labels, extra)]
            assert cases, name
            for labels in cases:
                assert set(rule["equal"]) - {"organization"} <= set(labels), (name, rule["equal"])
        assert {"job", "instance", "organization"} <= set(rule["equal"]), (source, target)
        pairs.add((source, target))
    assert pairs == {
        ("OpenAIApiKeyRotationOverdue", "OpenAIApiKeyRotationDue"),
        ("OpenAIExporterAdminKeyExpiring", "OpenAIAdminApiKeyExpiringSoon"),
        ("OpenAICertificateExpired", "OpenAICertificateExpiringSoon"),
        ("OpenAISpendLimitEnforcing", "OpenAIProjectSpendNearLimit"),
        ("OpenAISpendLimitEnforcing", "OpenAIOrganizationSpendNearLimit"),
    }


def test_spend_inhibitions_keep_organization_and_projects_apart() -> None:
    """A project's enforcing limit does not mute the organization's near-limit warning,
    nor the organization's enforcing limit a project's."""
    config = yaml.safe_load(ALERTMANAGER_EXAMPLE.read_text(encoding="utf-8"))
    project_enforcing = {"alertname": "OpenAISpendLimitEnforcing", "project_id": "proj_a"}
    organization_enforcing = {"alertname": "OpenAISpendLimitEnforcing"}
    muted = set()
    for rule in config["inhibit_rules"]:
        source, source_matchers = matched_alert(rule["source_matchers"])
        target, _ = matched_alert(rule["target_matchers"])
        if source != "OpenAISpendLimitEnforcing":
            continue
        subjects = (("project", project_enforcing), ("organization", organization_enforcing))
        for who, labels in subjects:
            if matches(labels, source_matchers):
                muted.add((who, target))
    assert muted == {
        ("project", "OpenAIProjectSpendNearLimit"),
        ("organization", "OpenAIOrganizationSpendNearLimit"),
    }


def test_the_inhibited_pairs_fire_together_for_the_same_subject() -> None:
    """Where the source fires, the target fires for the same subject: the inhibition is
    what keeps a second notification away, so it must have something to do."""
    config = yaml.safe_load(ALERTMANAGER_EXAMPLE.read_text(encoding="utf-8"))
    for rule in config["inhibit_rules"]:
        source, source_matchers = matched_alert(rule["source_matchers"])
        target, target_matchers = matched_alert(rule["target_matchers"])
        # As Alertmanager compares them: an absent label equals an empty one.
        targets = {
            tuple(labels.get(k, "") for k in rule["equal"])
            for labels in firing_labels(target)
            if matches(labels, target_matchers)
        }
        for labels in firing_labels(source):
            if matches(labels, source_matchers):
                subject = tuple(labels.get(k, "") for k in rule["equal"])
                assert subject in targets, (source, labels)
