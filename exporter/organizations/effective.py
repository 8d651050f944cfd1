"""One organization's settings: the flags and environment, with what its entry in
``--config.file`` sets put over them."""

from __future__ import annotations

from typing import Any

from exporter.collectors.catalog import COLLECTOR_NAMES
from exporter.config import Settings
from exporter.organizations.schema import OrganizationConfig


def organization_settings(base: Settings, organization: OrganizationConfig) -> Settings:
    """``base`` (flags and environment) with the organization's base URL, key file,
    collector switches, project filters and ``include_archived`` over it; what the
    organization leaves unset is ``base``'s. Everything else (listen address, TTLs,
    timeouts, concurrency, usage and costs settings) is ``base``'s, shared by all."""
    switched = dict.fromkeys(base.enabled_collectors, True) | organization.collectors
    updates: dict[str, Any] = {
        # Each organization reads its own key, from its own file (None only with --demo).
        "admin_key": None,
        "admin_key_file": organization.admin_key_file,
        "enabled_collectors": tuple(name for name in COLLECTOR_NAMES if switched.get(name)),
    }
    if organization.base_url is not None:
        updates["base_url"] = organization.base_url
    if organization.project_include is not None:
        updates["openai_project_include"] = organization.project_include
    if organization.project_exclude is not None:
        updates["openai_project_exclude"] = organization.project_exclude
    if organization.include_archived is not None:
        updates["openai_include_archived"] = organization.include_archived
    # Checked already, by Settings and by the organization's schema: no validation again.
    return base.model_copy(update=updates)
