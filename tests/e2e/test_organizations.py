"""End to end with two organizations: two simulators -> one exporter (--config.file) ->
Prometheus scraping /probe through the README's relabelling example -> Alertmanager.

Each organization (prod, staging: the README example's targets) has its own in-process
simulator holding a key overdue for rotation and a key whose owner lost access to its
project. Prometheus's scrape configs are the README's `scrape_configs` block itself, with
only the exporter's address and the scrape interval (60s there, 1 s here) replaced, so the
documented relabelling is what the test proves. The shipped rules run with the key alerts'
`for:` shortened (stack.SHORTENED); Alertmanager runs the example configuration. Once both
organizations' alerts fire, staging's admin key is revoked on its simulator: staging goes
down in its probe and in the exporter's /metrics, and prod's series and alerts stay.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import yaml

from exporter.simulator.app import SimulatorState, serve_simulator
from exporter.simulator.organization import Organization, SimApiKey, SimUser
from tests.alerts.rules import ROOT
from tests.e2e.organization import DAY, identity
from tests.e2e.stack import FAST_REFRESH, SCRAPE_JOB, SHORTENED, Stack, poll, start_stack
from tests.organizations import write_config

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

TIMEOUT = 60.0
README = ROOT / "README.md"
# The exporter's address in the README example, replaced by the test exporter's.
README_ADDRESS = "openai-key-exporter:9471"
ORGANIZATIONS = ("prod", "staging")
FAILING = "staging"
# The alerts each organization was built to fire, by the name of their key.
KEY_ALERTS = {
    "overdue": ("OpenAIApiKeyRotationDue", "OpenAIApiKeyRotationOverdue"),
    "lost-access": ("OpenAIApiKeyOwnerInactive",),
}


def readme_scrape_configs(address: str) -> list[dict[str, Any]]:
    """The README's `scrape_configs` example with `address` for the exporter's, scraping
    every second."""
    blocks = re.findall(r"```yaml\n(.*?)```", README.read_text(encoding="utf-8"), re.DOTALL)
    (example,) = [block for block in blocks if block.startswith("scrape_configs:")]
    assert README_ADDRESS in example
    configs: list[dict[str, Any]] = yaml.safe_load(example.replace(README_ADDRESS, address))[
        "scrape_configs"
    ]
    for config in configs:
        config["scrape_interval"] = "1s"
    return configs


@dataclass
class Simulated:
    state: SimulatorState
    keys: dict[str, SimApiKey]  # by name

    @property
    def expected(self) -> set[tuple[str, str]]:
        return {
            (alert, self.keys[name].id) for name, names in KEY_ALERTS.items() for alert in names
        }


def build(seed: int, now: int) -> Simulated:
    org = Organization(seed=seed, now=now)
    added = org.add_member("Ann", "ann@example.com", id=org.new_user_id(), added_at=now - DAY)
    ann = SimUser(added.id, "Ann", added.email, "member", added.added_at)
    project = org.add_project("Payments", created_at=now - 500 * DAY)
    keys = {
        "overdue": org.add_key(
            project.id, "overdue", created_at=now - 400 * DAY, last_used_at=now - DAY, owner=ann
        ),
        "lost-access": org.add_key(
            project.id,
            "lost-access",
            created_at=now - 10 * DAY,
            last_used_at=now - DAY,
            owner=ann,
            owner_project_access="inactive",
        ),
    }
    return Simulated(SimulatorState(org=org), keys)


@dataclass
class Organizations:
    simulated: dict[str, Simulated]  # by organization name
    stack: Stack

    async def firing(self) -> list[dict[str, Any]]:
        return [a for a in await self.stack.prometheus_alerts() if a["state"] == "firing"]

    async def wait_for_alerts(self, organizations: tuple[str, ...]) -> list[dict[str, Any]]:
        """Once every alert built for `organizations` fires: all firing alerts."""

        async def all_firing() -> list[dict[str, Any]] | None:
            active = await self.firing()
            for name in organizations:
                seen = {identity(a["labels"]) for a in active if organization_of(a) == name}
                if not self.simulated[name].expected <= seen:
                    return None
            return active

        return await poll(all_firing, "each organization's alerts", TIMEOUT, self.stack.logs)


def organization_of(alert: dict[str, Any]) -> str:
    return str(alert["labels"].get("organization", ""))


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def orgs(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Organizations]:
    now = int(time.time())
    simulated = {name: build(seed, now) for seed, name in enumerate(ORGANIZATIONS, start=1)}
    directory: Path = tmp_path_factory.mktemp("organizations")
    async with AsyncExitStack() as exit_stack:
        base_urls = {
            name: await exit_stack.enter_async_context(serve_simulator(sim.state))
            for name, sim in simulated.items()
        }
        config = write_config(directory, base_urls)
        stack = await start_stack(
            exit_stack,
            directory,
            SHORTENED,
            exporter_env={},
            exporter_args=(*FAST_REFRESH, f"--config.file={config}"),
            scrape_configs=readme_scrape_configs,
        )
        yield Organizations(simulated, stack)


async def values(stack: Stack, expr: str, label: str) -> dict[str, float]:
    return {r["metric"].get(label, ""): float(r["value"][1]) for r in await stack.query(expr)}


# The tests run in this order: healthy first, then the fault in one organization.


async def test_each_organization_is_a_target_named_after_it(orgs: Organizations) -> None:
    async def both_up() -> list[dict[str, Any]] | None:
        result = await orgs.stack.query(f'openai_up{{job="{SCRAPE_JOB}"}} == 1')
        return result if len(result) == len(ORGANIZATIONS) else None

    result = await poll(both_up, "openai_up 1 for both organizations", TIMEOUT, orgs.stack.logs)
    assert sorted((r["metric"]["organization"], r["metric"]["instance"]) for r in result) == [
        (name, name) for name in ORGANIZATIONS
    ]
    keys = await orgs.stack.query("count by (job, instance, organization) (openai_api_key_info)")
    assert {(r["metric"]["organization"], r["metric"]["instance"]) for r in keys} == {
        (name, name) for name in ORGANIZATIONS
    }
    assert {r["metric"]["job"] for r in keys} == {SCRAPE_JOB}
    assert all(float(r["value"][1]) == len(KEY_ALERTS) for r in keys)


async def test_exporter_metrics_report_each_organization(orgs: Organizations) -> None:
    async def both() -> dict[str, float] | None:
        up = await values(orgs.stack, "openai_exporter_organization_up", "organization")
        return up if up == dict.fromkeys(ORGANIZATIONS, 1.0) else None

    await poll(both, "openai_exporter_organization_up 1 for both", TIMEOUT, orgs.stack.logs)


async def test_each_organizations_alerts_carry_its_label(orgs: Organizations) -> None:
    active = await orgs.wait_for_alerts(ORGANIZATIONS)
    for name, sim in orgs.simulated.items():
        mine = [a for a in active if organization_of(a) == name]
        assert {identity(a["labels"]) for a in mine} >= sim.expected
        for alert in mine:
            assert alert["labels"]["instance"] == name
            assert alert["annotations"]["description"].startswith(f"Organization {name}: ")
        # No alert about one organization's key carries the other's label.
        ids = {key.id for key in sim.keys.values()}
        assert all(
            organization_of(a) == name for a in active if a["labels"].get("api_key_id") in ids
        )


async def test_alerts_reach_alertmanager_grouped_per_organization(orgs: Organizations) -> None:
    expected = {(name, subject) for name, sim in orgs.simulated.items() for subject in sim.expected}

    async def received() -> list[dict[str, Any]] | None:
        groups = await orgs.stack.alertmanager_groups()
        got = {(organization_of(a), identity(a["labels"])) for g in groups for a in g["alerts"]}
        return groups if expected <= got else None

    groups = await poll(received, "the alerts in Alertmanager", TIMEOUT, orgs.stack.logs)
    # The example groups by organization and project: no group mixes organizations.
    for group in groups:
        organization = group["labels"]["organization"]
        assert {organization_of(a) for a in group["alerts"]} == {organization}, group["labels"]
    assert {g["labels"]["organization"] for g in groups} == set(ORGANIZATIONS)


async def test_a_revoked_key_downs_its_organization_alone(orgs: Organizations) -> None:
    await orgs.wait_for_alerts(ORGANIZATIONS)
    orgs.simulated[FAILING].state.accepted_admin_keys = set()  # every key refused: 401
    healthy = dict.fromkeys(ORGANIZATIONS, 1.0) | {FAILING: 0.0}

    async def failing_alone() -> bool | None:
        up = await values(orgs.stack, f'openai_up{{job="{SCRAPE_JOB}"}}', "organization")
        exporter = await values(orgs.stack, "openai_exporter_organization_up", "organization")
        return (up == healthy and exporter == healthy) or None

    await poll(failing_alone, f"{FAILING} down, the others up", TIMEOUT, orgs.stack.logs)
    # Each organization's series stay (the failing one's are its last good data) and its
    # alerts keep firing; the scrape of every target goes on.
    keys = await values(orgs.stack, "count by (organization) (openai_api_key_info)", "organization")
    assert keys == dict.fromkeys(ORGANIZATIONS, float(len(KEY_ALERTS)))
    scrapes = await values(orgs.stack, f'up{{job="{SCRAPE_JOB}"}}', "organization")
    assert scrapes == dict.fromkeys(ORGANIZATIONS, 1.0)
    await orgs.wait_for_alerts(ORGANIZATIONS)
    up_again = await values(orgs.stack, f'openai_up{{job="{SCRAPE_JOB}"}}', "organization")
    assert up_again == healthy
