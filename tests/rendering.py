"""Rendering project-key snapshots in tests: by the renderer behind /metrics, and by the
prometheus_client baseline (bench/baseline.py) that must give the same samples."""

from __future__ import annotations

from prometheus_client.exposition import generate_latest

from bench.baseline import BaselineCollector
from exporter.collectors.api_keys import ApiKeysCollector, ProjectKeys, ProjectRecord
from exporter.collectors.base import Options
from exporter.rendering.renderer import SnapshotRenderer
from exporter.snapshot import ResourceState, Snapshot


def keys_snapshot(projects: tuple[ProjectRecord, ...], taken_at: float = 0.0) -> Snapshot:
    """A snapshot holding only the api_keys collector's rows."""
    return Snapshot({"api_keys": ResourceState(ProjectKeys(projects), taken_at)})


def projects_of(snapshot: Snapshot) -> tuple[ProjectRecord, ...]:
    rows: ProjectKeys = snapshot["api_keys"].rows
    return rows.projects


def keys_collector(*, owner_email: bool = False) -> ApiKeysCollector:
    return ApiKeysCollector(Options(emails=owner_email))


class KeysRenderer:
    """The renderer behind /metrics, with the api_keys collector alone."""

    def __init__(self, *, ttl: float = 300, owner_email: bool = False) -> None:
        self.renderer = SnapshotRenderer(
            [keys_collector(owner_email=owner_email)], ttls={"api_keys": ttl}
        )

    def render(
        self,
        snapshot: Snapshot | None,
        *,
        now: float,
        tail: bytes = b"",
        gzip: bool = False,
        openmetrics: bool = False,
    ) -> tuple[bytes, ...]:
        return self.renderer.render(
            snapshot or Snapshot(), now=now, tail=tail, gzip=gzip, openmetrics=openmetrics
        )

    def render_text(self, snapshot: Snapshot | None, *, now: float) -> bytes:
        return b"".join(self.render(snapshot, now=now))


def reference_text(
    snapshot: Snapshot | None, *, now: float, ttl: float = 300, owner_email: bool = False
) -> str:
    """The same snapshot by prometheus_client's plain families (the baseline)."""
    collector = BaselineCollector(
        [keys_collector(owner_email=owner_email)],
        snapshot or Snapshot(),
        now=now,
        ttls={"api_keys": ttl},
    )
    return generate_latest(collector).decode()
