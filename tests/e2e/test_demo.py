"""End to end on the demo: `openai-key-exporter --demo`, scraped by a real Prometheus.

The real command, with no key and no upstream: it serves the simulator's demo organization
(exporter/simulator/demo.py), refreshing every 2 s (stack.FAST_REFRESH: the demo's
dormant key wakes up a minute after the start, which the shipped 5m would show only at the
next refresh). Prometheus loads the shipped rules with the same shortened `for:` as the
other e2e stacks. Every credential alert, the alert on keys whose owner left, every
usage and spend alert but the spike, and every audit event alert (the demo's cases come
within its first minute, exporter/simulator/demo_audit.py) must fire for exactly the
demo's subjects built for it; the demo is healthy, so OpenAIExporterCollectorFailing and
OpenAIAuditLogUnavailable must stay silent.

The demo's spike (SPIKE_STARTS_AFTER, 65 minutes in) cannot fire within a test: the alert
compares the last hour with the hours before it, and the demo's Prometheus starts with
it. test_the_demo_key_spikes_after_an_hour checks the demo's usage gives the alert what
it needs; the alert itself is proven on promtool cases (alerts/tests/usage.test.yml) and
end to end on the e2e organization, whose week before the run is backfilled.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import pytest
import pytest_asyncio

from exporter.pipeline import DEMO_ADMIN_KEY
from exporter.simulator import demo, demo_audit
from exporter.simulator.organization import Organization, SimUser
from exporter.simulator.usage import USAGE_SOURCES
from tests.alerts.rules import AUDIT_ALERTS, CREDENTIAL_ALERTS, SPEND_ALERTS, alerts
from tests.e2e.organization import identity
from tests.e2e.stack import FAST_REFRESH, SHORTENED, Stack, poll, start_stack

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

# The dormant key wakes up DORMANT_WAKES_AFTER (60 s) after the exporter starts, and the
# audit cases are all recorded by CASES_END (60 s).
TIMEOUT = 60.0 + max(demo.DORMANT_WAKES_AFTER, demo_audit.CASES_END)
AUDIT_UNAVAILABLE = "OpenAIAuditLogUnavailable"
AUDIT_EVENT_ALERTS = tuple(name for name in AUDIT_ALERTS if name != AUDIT_UNAVAILABLE)
OWNER_LEFT = "OpenAIApiKeyOwnerLeftOrganization"
DORMANT = "OpenAIDormantApiKeyUsed"
DEPARTED_USED = "OpenAIApiKeyOfDepartedOwnerUsed"
CHECKED = (
    *CREDENTIAL_ALERTS,
    OWNER_LEFT,
    DORMANT,
    DEPARTED_USED,
    *SPEND_ALERTS,
    *AUDIT_EVENT_ALERTS,
)
HOUR = 3600


def departed_owner_keys_used(org: Organization, now: int) -> set[str]:
    """Keys whose owner lost project access or left, with requests in the exporter's
    lookback (3 h): all of it is new to a Prometheus that has just started."""
    members = {m.id for m in org.members()}
    departed = {
        key.id
        for project in org.projects()
        for key in org.keys(project.id)
        if key.owner_project_access == "inactive"
        or (isinstance(key.owner, SimUser) and key.owner.id not in members)
    }
    used: set[str] = set()
    for source in USAGE_SOURCES:
        buckets = org.usage.reported_values(
            source, now - 3 * HOUR, now + 1, "1h", ("api_key_id",), now=now
        )
        for groups in buckets.values():
            used |= {str(k[0]) for k, v in groups.items() if v["num_model_requests"] > 0}
    return departed & used


def spend_alerts(org: Organization, now: int) -> set[tuple[str, str]]:
    """The spend alerts the demo's limits and this month's spend fire."""
    spent = demo.month_to_date(org, now)
    fired = set()
    for project in org.projects():
        limit = org.project_spend_limit(project.id)
        if limit is None:
            continue
        if 100 * spent.get(project.id, 0) * 100 / limit.threshold_amount >= 80:
            fired.add(("OpenAIProjectSpendNearLimit", project.id))
        if limit.enforcing:
            fired.add(("OpenAISpendLimitEnforcing", project.id))
    organization = org.spend_limit()
    assert organization is not None
    if 100 * sum(spent.values()) * 100 / organization.threshold_amount >= 80:
        fired.add(("OpenAIOrganizationSpendNearLimit", ""))
    return fired


def audit_alerts(org: Organization) -> set[tuple[str, str]]:
    """The demo's audit cases (demo_audit), and the keys its generated history created
    without scopes: the exporter's backfill learns their scopes, counting nothing."""
    project = org.projects()[0].id
    history_unrestricted = {
        ("OpenAIApiKeyUnrestricted", str(event.details["id"]))
        for event in org.audit_events()
        if event.type == "api_key.created" and event.details["data"]["scopes"] == []
    }
    return history_unrestricted | {
        ("OpenAIApiKeysCreatedBurst", ""),
        ("OpenAILoginFailures", ""),
        ("OpenAIIpAllowlistDeactivated", ""),
        ("OpenAIApiKeyCreatedFromSession", project),
        ("OpenAIApiKeyScopesChanged", project),
        ("OpenAIApiKeyUnrestricted", demo_audit.UNRESTRICTED_KEY_ID),
    }


# What demo.py places by hand, and what each case fires. Keys that never expire include the
# legacy and the unused one (created without an expiry), not only "terraform"; the expired
# certificate is also within 30 days of expiry; the exporter's own key (5 days) also within
# 14 days.
EXPECTED = {
    ("OpenAIAdminApiKeyNoExpiry", demo.ADMIN_KEY_NEVER_EXPIRES_ID),
    ("OpenAIAdminApiKeyNoExpiry", demo.ADMIN_KEY_OLD_ID),
    ("OpenAIAdminApiKeyNoExpiry", demo.ADMIN_KEY_NEVER_USED_ID),
    ("OpenAIAdminApiKeyExpiringSoon", demo.ADMIN_KEY_EXPIRING_14_DAYS_ID),
    ("OpenAIAdminApiKeyExpiringSoon", demo.OWN_ADMIN_KEY_ID),
    ("OpenAIAdminApiKeyUnused", demo.ADMIN_KEY_IDLE_ID),
    ("OpenAIAdminApiKeyUnused", demo.ADMIN_KEY_NEVER_USED_ID),
    ("OpenAIAdminApiKeyRotationDue", demo.ADMIN_KEY_OLD_ID),
    ("OpenAIExporterAdminKeyExpiring", demo.OWN_ADMIN_KEY_ID),
    ("OpenAICertificateExpiringSoon", demo.CERTIFICATE_EXPIRING_ID),
    ("OpenAICertificateExpiringSoon", demo.CERTIFICATE_EXPIRED_ID),
    ("OpenAICertificateExpired", demo.CERTIFICATE_EXPIRED_ID),
} | {(OWNER_LEFT, key_id) for key_id in demo.DEPARTED_KEY_IDS}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def demo_stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    async with AsyncExitStack() as exit_stack:
        yield await start_stack(
            exit_stack,
            tmp_path_factory.mktemp("e2e-demo"),
            SHORTENED,
            exporter_env={},  # no key, no upstream: the demo needs neither
            exporter_args=["--demo", *FAST_REFRESH],
        )


def expected_now() -> set[tuple[str, str]]:
    """EXPECTED, and the alerts on departed owners' requests and on spend, from the
    demo organization as the exporter starts it now."""
    now = int(time.time())
    org = demo.demo_organization(DEMO_ADMIN_KEY, now=now)
    used = departed_owner_keys_used(org, now)
    return (
        EXPECTED
        | {(DORMANT, org.dormant_key_id)}
        | {(DEPARTED_USED, key_id) for key_id in used}
        | spend_alerts(org, now)
        | audit_alerts(org)
    )


async def test_the_demo_places_one_case_of_each_usage_and_spend_alert() -> None:
    """The departed user's pipeline is used (the generated keys of owners who lost access
    may be too); one project is near its limit, one enforcing (so near it as well), the
    organization near its own."""
    now = int(time.time())
    org = demo.demo_organization(DEMO_ADMIN_KEY, now=now)
    assert demo.DEPARTED_KEY_IDS[0] in departed_owner_keys_used(org, now)
    assert demo.DEPARTED_KEY_IDS[1] not in departed_owner_keys_used(org, now)  # never used
    fired = spend_alerts(org, now)
    names = sorted(name for name, _ in fired)
    assert names == [
        "OpenAIOrganizationSpendNearLimit",
        "OpenAIProjectSpendNearLimit",
        "OpenAIProjectSpendNearLimit",
        "OpenAISpendLimitEnforcing",
    ]
    (enforcing,) = [p for name, p in fired if name == "OpenAISpendLimitEnforcing"]
    assert ("OpenAIProjectSpendNearLimit", enforcing) in fired  # all of its limit spent


async def test_the_dormant_key_wakes_up_on_the_clock() -> None:
    """Its last use stays 30 to 90 days back until DORMANT_WAKES_AFTER, then moves to then."""
    now = 1_800_000_000
    clock = [float(now)]
    org = demo.demo_organization(DEMO_ADMIN_KEY, now=now, clock=lambda: clock[0])
    project = org.projects()[0]

    def last_used() -> int | None:
        page = org.page_keys(project.id, access="any", after=None, limit=100)
        (key,) = [k for k in page.items if k.id == org.dormant_key_id]
        return key.last_used_at

    before = last_used()
    assert before is not None
    assert 30 * 86400 <= now - before < 90 * 86400
    clock[0] = now + demo.DORMANT_WAKES_AFTER - 1
    assert last_used() == before
    clock[0] = now + demo.DORMANT_WAKES_AFTER
    assert last_used() == now + demo.DORMANT_WAKES_AFTER
    assert org.pending() == []


async def test_the_demo_key_spikes_after_an_hour() -> None:
    """The spiking key's tokens per minute over the burst's first hour: over the floor
    (1,000) and over 5 times the hour before (the recording rule's rate over 1h, against
    its average before)."""
    now = 1_800_000_000
    org = demo.demo_organization(DEMO_ADMIN_KEY, now=now)
    burst = now + demo.SPIKE_STARTS_AFTER

    def tokens(start: int, end: int) -> int:
        total = 0
        for groups in org.usage.final_values(
            "completions", start, end, "1m", ("api_key_id",), {"api_key_id": [org.spike_key_id]}
        ).values():
            for values in groups.values():
                total += values["input_tokens"] + values["output_tokens"]
        return total

    before = tokens(burst - 3600, burst) / 60
    during = tokens(burst, burst + 3600) / 60
    assert before > 0  # steady usage: the rate has a baseline to compare with
    assert during > 1000
    assert during > 5 * before


async def test_the_departed_user_is_the_only_owner_who_left() -> None:
    """The demo's generated part gives every key owner a membership: only the two keys
    placed for the departed user can fire OpenAIApiKeyOwnerLeftOrganization."""
    org = demo.demo_organization(DEMO_ADMIN_KEY)
    members = {m.id for m in org.members()}
    left = {
        key.id
        for project in org.projects()
        for key in org.keys(project.id)
        if isinstance(key.owner, SimUser) and key.owner.id not in members
    }
    assert left == set(demo.DEPARTED_KEY_IDS)


async def test_every_credential_alert_fires_for_the_demo(demo_stack: Stack) -> None:
    async def firing() -> set[tuple[str, str]] | None:
        seen = {
            identity(a["labels"])
            for a in await demo_stack.prometheus_alerts()
            if a["state"] == "firing" and a["labels"]["alertname"] in CHECKED
        }
        return seen if seen >= expected_now() else None

    expected = expected_now()
    assert await poll(firing, "the demo's alerts", TIMEOUT, demo_stack.logs) == expected
    assert {name for name, _ in expected} == set(CHECKED)


async def test_collector_failing_stays_silent_on_the_demo(demo_stack: Stack) -> None:
    async def healthy() -> bool | None:
        result = await demo_stack.query("min(openai_exporter_collector_success) == 1")
        return bool(result) or None

    await poll(healthy, "every collector to succeed", TIMEOUT, demo_stack.logs)
    assert await demo_stack.query(alerts()["OpenAIExporterCollectorFailing"].expr) == []
    assert await demo_stack.query('ALERTS{alertname="OpenAIExporterCollectorFailing"}') == []
    assert await demo_stack.query(alerts()[AUDIT_UNAVAILABLE].expr) == []
    assert await demo_stack.query(f'ALERTS{{alertname="{AUDIT_UNAVAILABLE}"}}') == []
    (up,) = await demo_stack.query("openai_up")
    assert up["value"][1] == "1"
