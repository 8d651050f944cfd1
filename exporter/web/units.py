"""The organization unit: everything one organization's scrapes read, built once.

A unit is one organization's settings, collectors, health (``openai_up`` and its own
``openai_exporter_collector_*``), renderer and snapshot cache, over the upstream that
all units share (``upstream.shared``). Single-organization mode has one unit; with
``--config.file`` there is one per configured organization, so nothing of one
organization (its schedule, last good data, health, prepared text) touches another's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

from exporter.cache import SnapshotCache
from exporter.clock import Clocks
from exporter.collectors.base import AnyCollector
from exporter.config import Settings
from exporter.health import ExporterHealth
from exporter.organizations import DemoOrganization, OrganizationsFile, organization_settings
from exporter.pipeline import collector_ttl, enabled_collectors, open_pipeline, organization_bound
from exporter.rendering.renderer import SnapshotRenderer
from exporter.upstream.shared import SharedUpstream

# The shared bound holds this many organizations' full refreshes at once, so one slow
# organization holds at most a quarter of it (docs/architecture.md).
ORGANIZATIONS_AT_FULL_SPEED = 4


@dataclass(frozen=True)
class OrganizationPlan:
    """A unit before its upstream opens: what sizes the shared bound."""

    name: str | None  # its target name; None: the one organization of the settings
    settings: Settings
    collectors: tuple[AnyCollector, ...]
    demo: DemoOrganization | None = None  # with --demo: its simulated organization


def single_plan(settings: Settings) -> OrganizationPlan:
    """The one organization of the flags and environment (no --config.file)."""
    return OrganizationPlan(None, settings, enabled_collectors(settings))


def configured_plans(base: Settings, file: OrganizationsFile) -> tuple[OrganizationPlan, ...]:
    """One plan per organization of --config.file, with its effective settings."""
    plans = []
    for organization in file.organizations:
        settings = organization_settings(base, organization)
        plans.append(
            OrganizationPlan(
                organization.name, settings, enabled_collectors(settings), organization.demo
            )
        )
    return tuple(plans)


def shared_bound(plans: Sequence[OrganizationPlan]) -> int:
    """Upstream requests in flight for the whole process: room for every organization's
    own bound at once up to ORGANIZATIONS_AT_FULL_SPEED of the largest; one organization
    (single mode) gets exactly its own, as before several existed."""
    bounds = [organization_bound(plan.collectors) for plan in plans]
    return min(sum(bounds), ORGANIZATIONS_AT_FULL_SPEED * max(bounds))


@dataclass(frozen=True)
class OrganizationUnit:
    name: str | None
    settings: Settings
    collectors: tuple[AnyCollector, ...]
    health: ExporterHealth
    # Keeps the prepared text of each collector's latest state between scrapes.
    renderer: SnapshotRenderer
    cache: SnapshotCache
    base_url: str


@asynccontextmanager
async def open_organization(
    plan: OrganizationPlan, *, upstream: SharedUpstream, clocks: Clocks
) -> AsyncIterator[OrganizationUnit]:
    """The unit, its caches open (and closed after) over ``upstream``."""
    settings, collectors = plan.settings, plan.collectors
    health = ExporterHealth(
        [collector.name for collector in collectors],
        [endpoint for collector in collectors for endpoint in collector.endpoints],
        outside_up=[collector.name for collector in collectors if not collector.in_up],
    )
    renderer = SnapshotRenderer(
        collectors, ttls={c.name: collector_ttl(settings, c.name) for c in collectors}
    )
    async with open_pipeline(
        settings,
        collectors,
        upstream=upstream,
        observe_request=health.observe_request,
        observe_report=health.record,
        clocks=clocks,
        organization=plan.name,
        demo=plan.demo,
    ) as (cache, base_url):
        yield OrganizationUnit(plan.name, settings, collectors, health, renderer, cache, base_url)
