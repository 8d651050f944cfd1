"""The inventory's metric families: their names and help, and the plain reference collector.

``/metrics`` is served by ``exporter.exposition.InventoryRenderer``, which writes the
same samples much faster; ``InventoryCollector`` is the straightforward version of it,
built fresh from one snapshot with ``GaugeMetricFamily``. It stays as the readable
specification: the tests and the benchmark check that both give the same samples.

Nothing here is long-lived: a key or project deleted upstream is simply absent
from the next snapshot, so its series vanish with no purging.

Example exposition for one key::

    openai_project_info{project_id="proj_a",project_name="Web",status="active"} 1
    openai_project_api_keys{project_id="proj_a"} 1
    openai_api_key_info{api_key_id="key_a",api_key_name="ci",owner_id="user-1",...} 1
    openai_api_key_created_timestamp_seconds{project_id="proj_a",api_key_id="key_a"} 1.7e9
    openai_api_key_last_used_timestamp_seconds{project_id="proj_a",api_key_id="key_a"} 1.7e9
    openai_api_key_age_seconds{project_id="proj_a",api_key_id="key_a"} 8.6e6
    openai_api_key_idle_seconds{project_id="proj_a",api_key_id="key_a"} 86400
    openai_api_key_never_used{project_id="proj_a",api_key_id="key_a"} 0
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from exporter.durations import format_duration
from exporter.snapshot import Inventory


@dataclass(frozen=True)
class Family:
    name: str
    help: str


PROJECT_INFO = Family(
    "openai_project_info", "One series per project, carrying its name and status."
)
PROJECT_KEYS = Family("openai_project_api_keys", "Number of API keys in the project.")
KEY_INFO = Family(
    "openai_api_key_info", "One series per project API key, carrying its name and owner."
)
KEY_CREATED = Family(
    "openai_api_key_created_timestamp_seconds", "Unix time at which the API key was created."
)
KEY_LAST_USED = Family(
    "openai_api_key_last_used_timestamp_seconds",
    "Unix time at which the API key was last used; absent for keys never used.",
)
KEY_AGE = Family("openai_api_key_age_seconds", "Seconds since the API key was created.")
KEY_IDLE = Family(
    "openai_api_key_idle_seconds",
    "Seconds since the API key was last used, or since it was created if never used.",
)
KEY_NEVER_USED = Family(
    "openai_api_key_never_used", "1 if the API key has never been used, else 0."
)

KEY_LABELS = ["project_id", "api_key_id"]
INFO_LABELS = (
    "project_id",
    "api_key_id",
    "api_key_name",
    "owner_type",
    "owner_id",
    "owner_name",
    "owner_project_access",
)


def info_labels(owner_email: bool) -> list[str]:
    return [*INFO_LABELS, "owner_email"] if owner_email else list(INFO_LABELS)


def cached_note(ttl: float) -> str:
    """Appended to the help of every inventory family: its values come from the cache."""
    return (
        f" Cached: from a snapshot of the Admin API refreshed at most every "
        f"{format_duration(ttl)}, so up to that old (see "
        "openai_exporter_last_success_timestamp_seconds)."
    )


def scrape_second(now: float) -> int:
    """The time ages are computed at: whole seconds, like the API's own timestamps."""
    return math.floor(now)


class InventoryCollector:
    """Renders one ``Inventory`` as of ``now`` (unix seconds; ages use whole seconds)."""

    def __init__(
        self, inventory: Inventory | None, *, now: float, ttl: float, owner_email: bool
    ) -> None:
        self._inventory = inventory
        self._now = scrape_second(now)
        self._cached = cached_note(ttl)
        self._owner_email = owner_email

    def _family(self, family: Family, labels: list[str]) -> GaugeMetricFamily:
        return GaugeMetricFamily(family.name, family.help + self._cached, labels=labels)

    def collect(self) -> Iterator[Metric]:
        if self._inventory is None:
            return
        now = self._now
        project_info = self._family(PROJECT_INFO, ["project_id", "project_name", "status"])
        key_counts = self._family(PROJECT_KEYS, ["project_id"])
        key_info = self._family(KEY_INFO, info_labels(self._owner_email))
        created = self._family(KEY_CREATED, KEY_LABELS)
        last_used = self._family(KEY_LAST_USED, KEY_LABELS)
        age = self._family(KEY_AGE, KEY_LABELS)
        idle = self._family(KEY_IDLE, KEY_LABELS)
        never_used = self._family(KEY_NEVER_USED, KEY_LABELS)
        for project in self._inventory.projects:
            project_info.add_metric([project.id, project.name, project.status], 1)
            if project.keys is None:
                continue
            key_counts.add_metric([project.id], len(project.keys))
            for key in project.keys:
                ids = [project.id, key.id]
                info = [
                    project.id,
                    key.id,
                    key.name,
                    key.owner_type,
                    key.owner_id,
                    key.owner_name,
                    key.owner_project_access,
                ]
                if self._owner_email:
                    info.append(key.owner_email)
                key_info.add_metric(info, 1)
                created.add_metric(ids, key.created_at)
                age.add_metric(ids, max(0, now - key.created_at))
                if key.last_used_at is None:
                    idle.add_metric(ids, max(0, now - key.created_at))
                    never_used.add_metric(ids, 1)
                else:
                    last_used.add_metric(ids, key.last_used_at)
                    idle.add_metric(ids, max(0, now - key.last_used_at))
                    never_used.add_metric(ids, 0)
        yield from (project_info, key_counts, key_info, created, last_used, age, idle, never_used)
