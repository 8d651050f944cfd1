"""End to end on the demo: `openai-key-exporter --demo`, scraped by a real Prometheus.

The real command, with no key and no upstream: it serves the simulator's demo organization
(exporter/simulator/demo.py). Prometheus loads the shipped rules with the same shortened
`for:` as the other e2e stacks. Every credential alert, and the alert on keys whose owner
left, must fire for exactly the demo's subjects built for it; the demo is healthy, so
OpenAIExporterCollectorFailing must stay silent.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import pytest
import pytest_asyncio

from exporter.pipeline import DEMO_ADMIN_KEY
from exporter.simulator import demo
from exporter.simulator.organization import SimUser
from tests.alerts.rules import CREDENTIAL_ALERTS, alerts
from tests.e2e.organization import identity
from tests.e2e.stack import SHORTENED, Stack, poll, start_stack

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

TIMEOUT = 60.0
OWNER_LEFT = "OpenAIApiKeyOwnerLeftOrganization"
CHECKED = (*CREDENTIAL_ALERTS, OWNER_LEFT)

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
            exporter_args=["--demo"],
        )


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
        return seen if seen >= EXPECTED else None

    assert await poll(firing, "the demo's alerts", TIMEOUT, demo_stack.logs) == EXPECTED
    assert {name for name, _ in EXPECTED} == set(CHECKED)


async def test_collector_failing_stays_silent_on_the_demo(demo_stack: Stack) -> None:
    async def healthy() -> bool | None:
        result = await demo_stack.query("min(openai_exporter_collector_success) == 1")
        return bool(result) or None

    await poll(healthy, "every collector to succeed", TIMEOUT, demo_stack.logs)
    assert await demo_stack.query(alerts()["OpenAIExporterCollectorFailing"].expr) == []
    assert await demo_stack.query('ALERTS{alertname="OpenAIExporterCollectorFailing"}') == []
    (up,) = await demo_stack.query("openai_up")
    assert up["value"][1] == "1"
