"""One collector per upstream resource of the Admin API.

``REGISTRY`` is where collectors are registered: one line each, in exposition order.
Their names and defaults are in ``catalog`` (which the configuration reads without
importing the collectors).
"""

from __future__ import annotations

from exporter.collectors.admin_api_keys import AdminApiKeysCollector
from exporter.collectors.api_keys import ApiKeysCollector
from exporter.collectors.audit_logs import AuditLogsCollector
from exporter.collectors.base import AnyCollector, Options
from exporter.collectors.catalog import COLLECTOR_NAMES
from exporter.collectors.certificates import CertificatesCollector
from exporter.collectors.costs import CostsCollector
from exporter.collectors.invites import InvitesCollector
from exporter.collectors.rate_limits import RateLimitsCollector
from exporter.collectors.service_accounts import ServiceAccountsCollector
from exporter.collectors.spend_limits import SpendLimitsCollector
from exporter.collectors.usage import UsageCollector
from exporter.collectors.users import UsersCollector

REGISTRY: tuple[type[AnyCollector], ...] = (
    ApiKeysCollector,
    AdminApiKeysCollector,
    UsersCollector,
    InvitesCollector,
    CertificatesCollector,
    ServiceAccountsCollector,
    UsageCollector,
    CostsCollector,
    SpendLimitsCollector,
    RateLimitsCollector,
    AuditLogsCollector,
)

_BY_NAME = {collector.name: collector for collector in REGISTRY}
if set(_BY_NAME) != set(COLLECTOR_NAMES):
    raise ImportError("collectors.REGISTRY and collectors.catalog name different collectors")


def build_collectors(names: tuple[str, ...], options: Options) -> tuple[AnyCollector, ...]:
    """The enabled collectors, in registry order."""
    return tuple(cls(options) for cls in REGISTRY if cls.name in names)
