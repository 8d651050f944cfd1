"""The organization unit: everything one organization's scrapes read, built once.

A unit is one organization's settings, collectors, health (``openai_up`` and its own
``openai_exporter_collector_*``), renderer and snapshot cache, over the upstream that
all units share (``upstream.shared``). Single-organization mode has one unit; with
``--config.file`` there is one per configured organization, so nothing of one
organization (its schedule, last good data, health, prepared text) touches another's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from exporter.cache import SnapshotCache
from exporter.clock import Clocks
from exporter.collectors.base import AnyCollector
from exporter.config import Settings
from exporter.health import ExporterHealth
from exporter.pipeline import collector_ttl, enabled_collectors, open_pipeline
from exporter.rendering.renderer import SnapshotRenderer
from exporter.upstream.shared import SharedUpstream


@dataclass(frozen=True)
class OrganizationPlan:
    """A unit before its upstream opens: what sizes the shared bound."""

    name: str
    settings: Settings
    collectors: tuple[AnyCollector, ...]


def plan_organization(name: str, settings: Settings) -> OrganizationPlan:
    return OrganizationPlan(name, settings, enabled_collectors(settings))


@dataclass(frozen=True)
class OrganizationUnit:
    name: str
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
    ) as (cache, base_url):
        yield OrganizationUnit(plan.name, settings, collectors, health, renderer, cache, base_url)
