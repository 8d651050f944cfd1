"""The fast renderer behind /metrics: same samples as the reference, valid gzip, fresh text."""

from __future__ import annotations

import gzip
import zlib
from dataclasses import replace

import pytest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)

from exporter.collectors.api_keys import ApiKeyRecord, ProjectRecord
from exporter.simulator.organization import OrganizationSpec, SimUser, build_organization
from exporter.snapshot import Snapshot
from tests.rendering import KeysRenderer, keys_snapshot, projects_of, reference_text
from tests.support import ExporterFactory, Simulation, parse_samples, sample, series

NOW = 1_750_000_000.75  # a fraction: ages are taken at the whole second before it
DAY = 86400
PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
    "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)


def simulated_inventory(projects: int = 12, keys_per_project: int = 7) -> Snapshot:
    """A seeded organization (awkward names included) as the refresher would store it."""
    org = build_organization(
        OrganizationSpec(
            seed=3, projects=projects, keys_per_project=keys_per_project, now=int(NOW) - DAY
        )
    )
    records = []
    for project in org.projects(include_archived=True):
        keys = tuple(
            ApiKeyRecord(
                id=key.id,
                name=key.name,
                created_at=key.created_at,
                last_used_at=key.last_used_at,
                owner_type="user" if isinstance(key.owner, SimUser) else "service_account",
                owner_id=key.owner.id,
                owner_name=key.owner.name,
                owner_email=key.owner.email if isinstance(key.owner, SimUser) else "",
                owner_project_access=key.owner_project_access,
            )
            for key in org.keys(project.id)
        )
        records.append(ProjectRecord(project.id, project.name, project.status, keys))
    return keys_snapshot(tuple(records), taken_at=NOW - 5)


def reference(inventory: Snapshot | None, *, now: float = NOW, owner_email: bool = False) -> str:
    return reference_text(inventory, now=now, ttl=300, owner_email=owner_email)


def text(renderer: KeysRenderer, inventory: Snapshot | None, *, now: float = NOW) -> str:
    return renderer.render_text(inventory, now=now).decode()


@pytest.mark.parametrize("owner_email", [False, True])
def test_same_samples_as_the_reference_collector(owner_email: bool) -> None:
    inventory = simulated_inventory()
    renderer = KeysRenderer(ttl=300, owner_email=owner_email)
    ours = parse_samples(text(renderer, inventory))
    assert ours == parse_samples(reference(inventory, owner_email=owner_email))
    assert len(series(ours, "openai_api_key_info")) == 12 * 7


def test_same_help_and_types_as_the_reference_collector() -> None:
    inventory = simulated_inventory(2, 2)
    ours = text(KeysRenderer(ttl=600, owner_email=False), inventory)
    theirs = reference_text(inventory, now=NOW, ttl=600).encode()
    comments = {line for line in theirs.decode().splitlines() if line.startswith("#")}
    assert {line for line in ours.splitlines() if line.startswith("#")} == comments


def test_the_text_with_eof_is_openmetrics_with_the_same_samples() -> None:
    inventory = simulated_inventory()
    plain = text(KeysRenderer(ttl=300, owner_email=False), inventory)
    families = list(openmetrics_families(plain + "# EOF\n"))  # type: ignore[no-untyped-call]
    samples = {(s.name, frozenset(s.labels.items())): s.value for f in families for s in f.samples}
    assert samples == parse_samples(plain)


def test_gzip_is_one_member_holding_exactly_the_plain_text() -> None:
    inventory = simulated_inventory()
    renderer = KeysRenderer(ttl=300, owner_email=False)
    tail = b"# HELP openai_up Up.\n# TYPE openai_up gauge\nopenai_up 1\n"
    plain = b"".join(renderer.render(inventory, now=NOW, tail=tail))
    for now in (NOW, NOW + 0.1, NOW + 1):  # the first one compresses, then reuse, then anew
        body = b"".join(renderer.render(inventory, now=now, tail=tail, gzip=True))
        decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
        assert decompressor.decompress(body) == b"".join(
            renderer.render(inventory, now=now, tail=tail)
        )
        # One member, checksum and length verified, nothing after it: any gzip reader copes.
        assert decompressor.eof
        assert decompressor.unused_data == b""
    assert gzip.decompress(b"".join(renderer.render(inventory, now=NOW, tail=tail, gzip=True))) == (
        plain
    )


def test_without_a_snapshot_only_the_tail_is_served() -> None:
    renderer = KeysRenderer(ttl=300, owner_email=False)
    assert renderer.render(None, now=NOW, tail=b"tail\n") == (b"tail\n",)
    assert gzip.decompress(b"".join(renderer.render(None, now=NOW, tail=b"t\n", gzip=True))) == (
        b"t\n"
    )


def test_ages_move_with_the_clock_in_whole_seconds() -> None:
    inventory = simulated_inventory(2, 3)
    renderer = KeysRenderer(ttl=300, owner_email=False)
    key = projects_of(inventory)[0].keys[0]  # type: ignore[index]
    ids = {"project_id": projects_of(inventory)[0].id, "api_key_id": key.id}
    for now in (NOW, NOW + 0.2, NOW + 3600):
        ours = parse_samples(text(renderer, inventory, now=now))
        age = sample(ours, "openai_api_key_age_seconds", **ids)
        assert age == int(now) - key.created_at
        assert ours == parse_samples(reference(inventory, now=now))


def test_a_timestamp_in_the_future_gives_an_age_of_zero_not_a_negative_one() -> None:
    future = ApiKeyRecord(
        "key_f", "f", int(NOW) + 100, int(NOW) + 50, "user", "u", "U", "", "active"
    )
    inventory = keys_snapshot((ProjectRecord("proj_f", "F", "active", (future,)),), NOW)
    ours = parse_samples(text(KeysRenderer(ttl=300, owner_email=False), inventory))
    ids = {"project_id": "proj_f", "api_key_id": "key_f"}
    assert sample(ours, "openai_api_key_age_seconds", **ids) == 0
    assert sample(ours, "openai_api_key_idle_seconds", **ids) == 0
    assert ours == parse_samples(reference(inventory))


def test_percent_signs_and_escapes_in_ids_survive_the_templates() -> None:
    odd = ApiKeyRecord('key_%d%s%%"\\\n', "n", int(NOW) - DAY, None, "user", "u", "U", "", "active")
    inventory = keys_snapshot((ProjectRecord("proj_%", "P", "active", (odd,)),), NOW)
    ours = parse_samples(text(KeysRenderer(ttl=300, owner_email=False), inventory))
    ids = {"project_id": "proj_%", "api_key_id": 'key_%d%s%%"\\\n'}
    assert sample(ours, "openai_api_key_age_seconds", **ids) == DAY
    assert ours == parse_samples(reference(inventory))


def test_a_new_snapshot_replaces_the_prepared_text() -> None:
    inventory = simulated_inventory(3, 3)
    renderer = KeysRenderer(ttl=300, owner_email=False)
    before = parse_samples(text(renderer, inventory))
    gone = projects_of(inventory)[0].keys[0]  # type: ignore[index]
    first = replace(projects_of(inventory)[0], keys=projects_of(inventory)[0].keys[1:])  # type: ignore[index]
    after = keys_snapshot((first, *projects_of(inventory)[1:]), NOW)
    now_text = text(renderer, after)
    assert gone.id in str(before)
    assert gone.id not in now_text
    assert parse_samples(now_text) == parse_samples(reference(after))
    # gzip too: its cached compressed text belongs to the old snapshot.
    body = gzip.decompress(b"".join(renderer.render(after, now=NOW, gzip=True))).decode()
    assert body == now_text


async def test_metrics_as_prometheus_asks_is_gzipped_openmetrics(
    simulation: Simulation, start_exporter: ExporterFactory
) -> None:
    client = await start_exporter()
    response = await client.get(
        "/metrics",
        headers={"Accept": PROMETHEUS_ACCEPT, "Accept-Encoding": "gzip"},
        auto_decompress=False,
    )
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("application/openmetrics-text")
    assert response.headers["Content-Encoding"] == "gzip"
    body = gzip.decompress(await response.read()).decode()
    assert body.endswith("# EOF\n")
    families = {f.name for f in openmetrics_families(body)}  # type: ignore[no-untyped-call]
    assert {"openai_api_key_age_seconds", "openai_up", "openai_exporter_refreshes"} <= families


async def test_head_of_metrics_has_the_headers_and_no_body(
    simulation: Simulation, start_exporter: ExporterFactory
) -> None:
    client = await start_exporter()
    get = await client.get("/metrics", headers={"Accept-Encoding": "gzip"})
    head = await client.head("/metrics", headers={"Accept-Encoding": "gzip"})
    assert head.status == 200
    assert head.headers["Content-Encoding"] == "gzip"
    assert int(head.headers["Content-Length"]) > 0
    assert await head.read() == b""
    assert get.headers["Content-Type"] == head.headers["Content-Type"]
