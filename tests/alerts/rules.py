"""The shipped Prometheus rules and the metric contract they (and the dashboards) rest on.

Shared by the alert, dashboard and end-to-end tests.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import promql_parser
import yaml

from tests.support import CONTRACT

ROOT = Path(__file__).resolve().parents[2]
RULES_FILE = ROOT / "alerts" / "openai-key-exporter.rules.yml"
RULE_TESTS_DIR = ROOT / "alerts" / "tests"
ALERTMANAGER_EXAMPLE = ROOT / "alerts" / "alertmanager.example.yml"
RUNBOOK = ROOT / "docs" / "runbook.md"
DASHBOARDS_DOC = ROOT / "docs" / "dashboards-and-alerts.md"
RUNBOOK_URL = "https://github.com/openai-key-exporter/openai-key-exporter/blob/main/docs/runbook.md"

# The exporter's public contract (issue 2, table "Metrics"): names exactly these.
CONTRACT_METRICS = frozenset(CONTRACT)
# Series Prometheus makes itself.
PROMETHEUS_METRICS = frozenset({"up", "ALERTS", "ALERTS_FOR_STATE"})

# Alerts about one project key, about one project, about the organization's other
# credentials (admin keys, certificates), and about the exporter itself.
KEY_ALERTS = (
    "OpenAIApiKeyUnused",
    "OpenAIApiKeyNeverUsed",
    "OpenAIApiKeyRotationDue",
    "OpenAIApiKeyRotationOverdue",
    "OpenAIApiKeyOwnerInactive",
    "OpenAIApiKeyOwnerLeftOrganization",
)
PROJECT_ALERTS = ("OpenAIProjectTooManyKeys",)
ADMIN_KEY_ALERTS = (
    "OpenAIAdminApiKeyNoExpiry",
    "OpenAIAdminApiKeyExpiringSoon",
    "OpenAIAdminApiKeyUnused",
    "OpenAIAdminApiKeyRotationDue",
    "OpenAIExporterAdminKeyExpiring",
)
CERTIFICATE_ALERTS = (
    "OpenAICertificateExpiringSoon",
    "OpenAICertificateExpired",
)
CREDENTIAL_ALERTS = ADMIN_KEY_ALERTS + CERTIFICATE_ALERTS
EXPORTER_ALERTS = (
    "OpenAIExporterDown",
    "OpenAIExporterCollectorFailing",
    "OpenAIExporterDataStale",
    "OpenAIExporterRateLimited",
)
# Alerts on what the organization's keys do and spend (issue 10: collectors usage, costs,
# spend_limits): about one project key (named like KEY_ALERTS), and about spend against the
# limits of a project or of the organization.
USAGE_KEY_ALERTS = (
    "OpenAIDormantApiKeyUsed",
    "OpenAIApiKeyOfDepartedOwnerUsed",
    "OpenAIApiKeyUsageSpike",
)
SPEND_ALERTS = (
    "OpenAIProjectSpendNearLimit",
    "OpenAIOrganizationSpendNearLimit",
    "OpenAISpendLimitEnforcing",
)
USAGE_ALERTS = USAGE_KEY_ALERTS + SPEND_ALERTS
# Alerts on the organization's audit log (issue 11: collector audit_logs): security events as
# they happen, keys that grant every permission, and the audit log being unreadable.
AUDIT_ALERTS = (
    "OpenAIApiKeysCreatedBurst",
    "OpenAIApiKeyCreatedFromSession",
    "OpenAILoginFailures",
    "OpenAIIpAllowlistDeactivated",
    "OpenAIApiKeyScopesChanged",
    "OpenAIApiKeyUnrestricted",
    "OpenAIAuditLogUnavailable",
)
# Exporter alerts labelled by the collector they are about.
COLLECTOR_ALERTS = (
    "OpenAIExporterCollectorFailing",
    "OpenAIExporterDataStale",
    "OpenAIExporterRateLimited",
)

PROMTOOL = "promtool"
AMTOOL = "amtool"


def require_tool(name: str) -> str:
    """The tool's path; fails (never skips) when `make test`'s system deps are missing."""
    path = shutil.which(name)
    assert path is not None, f"{name} not found: run ./scripts/install-system-deps.sh"
    return path


@dataclass(frozen=True)
class Rule:
    group: str
    raw: dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.raw.get("alert") or self.raw["record"])

    @property
    def is_alert(self) -> bool:
        return "alert" in self.raw

    @property
    def expr(self) -> str:
        return str(self.raw["expr"])

    @property
    def for_(self) -> str | None:
        value = self.raw.get("for")
        return None if value is None else str(value)

    @property
    def labels(self) -> dict[str, str]:
        return {str(k): str(v) for k, v in (self.raw.get("labels") or {}).items()}

    @property
    def annotations(self) -> dict[str, str]:
        return {str(k): str(v) for k, v in (self.raw.get("annotations") or {}).items()}


def load_rule_document(path: Path = RULES_FILE) -> dict[str, Any]:
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def load_rules(path: Path = RULES_FILE) -> list[Rule]:
    return [
        Rule(group=str(group["name"]), raw=rule)
        for group in load_rule_document(path)["groups"]
        for rule in group["rules"]
    ]


def alerts() -> dict[str, Rule]:
    return {rule.name: rule for rule in load_rules() if rule.is_alert}


def recording_rule_names() -> frozenset[str]:
    return frozenset(rule.name for rule in load_rules() if not rule.is_alert)


def metric_names(expr: str) -> set[str]:
    """Every metric name a PromQL expression selects (raises ValueError if it does not parse)."""
    names: set[str] = set()

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            if node.name:
                names.add(node.name)
            for matcher in node.matchers.matchers:
                if matcher.name == "__name__":
                    names.add(matcher.value)

    promql_parser.walk(promql_parser.parse(expr), visit)
    return names


_DURATION_PART = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
_DURATION_SECONDS = {
    "ms": 0.001,
    "s": 1,
    "m": 60,
    "h": 3600,
    "d": 86400,
    "w": 7 * 86400,
    "y": 365 * 86400,
}


def duration_seconds(text: str) -> float:
    """Seconds of a Prometheus duration such as `1h30m` or `15m`."""
    parts = _DURATION_PART.findall(text)
    assert parts, f"not a duration: {text!r}"
    assert "".join(n + u for n, u in parts) == text, f"not a duration: {text!r}"
    return sum(int(n) * _DURATION_SECONDS[u] for n, u in parts)


_DAYS_THRESHOLD = re.compile(r"[<>]=?\s*(\d+)\s*\*\s*86400")


def days_thresholds(alert: str) -> list[int]:
    """The `<days> * 86400` thresholds (after >, >=, < or <=) of an alert's expression, in order."""
    return [int(days) for days in _DAYS_THRESHOLD.findall(alerts()[alert].expr)]


def days_threshold(alert: str) -> int:
    """The single `<days> * 86400` threshold written in an alert's expression."""
    found = days_thresholds(alert)
    assert len(found) == 1, f"{alert} has no single `> <days> * 86400` threshold"
    return found[0]


def runbook_anchors() -> set[str]:
    """GitHub's anchors for the runbook's headings (lower case, spaces to dashes)."""
    headings = re.findall(r"^#{1,6} (.+)$", RUNBOOK.read_text(encoding="utf-8"), re.MULTILINE)
    return {re.sub(r"[^a-z0-9 _-]", "", h.lower()).replace(" ", "-") for h in headings}
