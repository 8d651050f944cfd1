"""One collector per upstream resource of the Admin API.

``REGISTRY`` is where collectors are registered: one line each, in exposition order.
Their names and defaults are in ``catalog`` (which the configuration reads without
importing the collectors).
"""

from __future__ import annotations

from exporter.collectors.api_keys import ApiKeysCollector
from exporter.collectors.base import AnyCollector, Options
from exporter.collectors.catalog import COLLECTOR_NAMES

REGISTRY: tuple[type[AnyCollector], ...] = (ApiKeysCollector,)

_BY_NAME = {collector.name: collector for collector in REGISTRY}
if not set(_BY_NAME) <= set(COLLECTOR_NAMES):
    raise ImportError("a registered collector is missing from collectors.catalog")


def build_collectors(names: tuple[str, ...], options: Options) -> tuple[AnyCollector, ...]:
    """The enabled collectors, in registry order."""
    return tuple(cls(options) for cls in REGISTRY if cls.name in names)
