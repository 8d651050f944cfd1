"""The collectors this exporter knows, by name, and whether each is on by default.

The names are the public switches (``--collector.<name>``, ``--no-collector.<name>``,
``OPENAI_EXPORTER_COLLECTOR_<NAME>``) and the ``collector`` label of the health
metrics. ``exporter.collectors.REGISTRY`` holds the collectors themselves, in this order.
"""

from __future__ import annotations

from typing import Final

# name -> on by default. service_accounts and rate_limits are off: one more request per
# project each (and rate_limits one series pair per project and model).
COLLECTOR_DEFAULTS: Final[dict[str, bool]] = {
    "api_keys": True,
    "admin_api_keys": True,
    "users": True,
    "invites": True,
    "certificates": True,
    "service_accounts": False,
    "usage": True,
    "costs": True,
    "spend_limits": True,
    "rate_limits": False,
    "audit_logs": True,
}
COLLECTOR_NAMES: Final[tuple[str, ...]] = tuple(COLLECTOR_DEFAULTS)
