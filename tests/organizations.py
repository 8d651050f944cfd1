"""Helpers of the several-organizations tests: a ``--config.file`` with a key file per
organization, the settings that name it, and exporters started on it."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from exporter.config import Settings
from tests.support import INVENTORY_COLLECTORS


def fake_key(name: str) -> str:
    return f"sk-admin-test-fake-{name}"


def write_config(directory: Path, base_urls: Mapping[str, str]) -> Path:
    """A config file naming each organization with its base URL and its own key file
    (holding ``fake_key(name)``); returns its path."""
    organizations = []
    for name, base_url in base_urls.items():
        key_file = directory / f"{name}.key"
        key_file.write_text(fake_key(name) + "\n")
        organizations.append({"name": name, "admin_key_file": str(key_file), "base_url": base_url})
    path = directory / "organizations.yaml"
    path.write_text(yaml.safe_dump({"organizations": organizations}))
    return path


def organizations_settings(config_file: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "config_file": config_file,
        "enabled_collectors": INVENTORY_COLLECTORS,
    }
    values.update(overrides)
    return Settings(**values)
