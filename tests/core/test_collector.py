"""The exposition of a snapshot: names, values, escaping, and promtool's verdict.

``render`` goes through ``SnapshotRenderer`` (tests/rendering.py), what /metrics serves;
the prometheus_client baseline (bench/baseline.py) must give the same samples (see also
tests/core/test_exposition.py).
"""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families

from exporter.collectors.api_keys import ApiKeyRecord, ProjectRecord
from exporter.snapshot import Snapshot
from tests.rendering import KeysRenderer, keys_snapshot, projects_of, reference_text
from tests.support import assert_promtool_accepts

NOW = 1_750_000_000.0
DAY = 86400


def key(
    key_id: str,
    *,
    name: str = "ci",
    created_days_ago: int = 10,
    used_days_ago: int | None = 1,
    owner_name: str = "Ada",
    access: str = "active",
) -> ApiKeyRecord:
    return ApiKeyRecord(
        id=key_id,
        name=name,
        created_at=int(NOW) - created_days_ago * DAY,
        last_used_at=None if used_days_ago is None else int(NOW) - used_days_ago * DAY,
        owner_type="user",
        owner_id="user-ada",
        owner_name=owner_name,
        owner_email="ada@example.com",
        owner_project_access=access,  # type: ignore[arg-type]
    )


def render(inventory: Snapshot | None, *, owner_email: bool = False) -> str:
    renderer = KeysRenderer(ttl=300, owner_email=owner_email)
    return renderer.render_text(inventory, now=NOW).decode()


def render_reference(inventory: Snapshot | None, *, owner_email: bool = False) -> str:
    return reference_text(inventory, now=NOW, ttl=300, owner_email=owner_email)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(text: str, name: str, **labels: str) -> float | None:
    return samples(text).get((name, tuple(sorted(labels.items()))))


INVENTORY = keys_snapshot(
    projects=(
        ProjectRecord(
            "proj_a",
            "Web",
            "active",
            (key("key_used"), key("key_never", created_days_ago=40, used_days_ago=None)),
        ),
        ProjectRecord("proj_empty", "Empty", "archived", ()),
        ProjectRecord("proj_unknown", "Unlisted", "active", None),
    ),
    taken_at=NOW - 5,
)


def test_key_metrics_are_timestamps_and_derived_ages() -> None:
    text = render(INVENTORY)
    ids = {"project_id": "proj_a", "api_key_id": "key_used"}
    assert value(text, "openai_api_key_created_timestamp_seconds", **ids) == NOW - 10 * DAY
    assert value(text, "openai_api_key_last_used_timestamp_seconds", **ids) == NOW - 1 * DAY
    assert value(text, "openai_api_key_age_seconds", **ids) == 10 * DAY
    assert value(text, "openai_api_key_idle_seconds", **ids) == 1 * DAY
    assert value(text, "openai_api_key_never_used", **ids) == 0


def test_a_never_used_key_has_no_last_used_series_and_idles_since_creation() -> None:
    text = render(INVENTORY)
    ids = {"project_id": "proj_a", "api_key_id": "key_never"}
    assert value(text, "openai_api_key_last_used_timestamp_seconds", **ids) is None
    assert value(text, "openai_api_key_idle_seconds", **ids) == 40 * DAY
    assert value(text, "openai_api_key_never_used", **ids) == 1


def test_projects_and_key_counts() -> None:
    text = render(INVENTORY)
    assert value(text, "openai_project_api_keys", project_id="proj_a") == 2
    assert value(text, "openai_project_api_keys", project_id="proj_empty") == 0
    info = {"project_id": "proj_empty", "project_name": "Empty", "status": "archived"}
    assert value(text, "openai_project_info", **info) == 1


def test_a_project_whose_keys_were_never_listed_has_no_count_rather_than_zero() -> None:
    text = render(INVENTORY)
    assert value(text, "openai_project_api_keys", project_id="proj_unknown") is None
    info = {"project_id": "proj_unknown", "project_name": "Unlisted", "status": "active"}
    assert value(text, "openai_project_info", **info) == 1


def test_key_info_carries_owner_and_hides_email_unless_asked() -> None:
    labels = {
        "project_id": "proj_a",
        "api_key_id": "key_used",
        "api_key_name": "ci",
        "owner_type": "user",
        "owner_id": "user-ada",
        "owner_name": "Ada",
        "owner_project_access": "active",
    }
    assert value(render(INVENTORY), "openai_api_key_info", **labels) == 1
    assert "ada@example.com" not in render(INVENTORY)
    with_email = render(INVENTORY, owner_email=True)
    assert value(with_email, "openai_api_key_info", **labels, owner_email="ada@example.com") == 1


def test_help_says_the_values_are_cached_and_how_old_they_may_be() -> None:
    text = render(INVENTORY)
    help_line = next(
        line for line in text.splitlines() if line.startswith("# HELP openai_api_key_age_seconds")
    )
    assert "refreshed at most every 5m" in help_line


def test_no_snapshot_renders_no_inventory_series() -> None:
    assert render(None) == ""


AWKWARD = ['quote " and \\ backslash', "new\nline", "emoji 🔑 ключ 鍵", "tab\tand trailing \\"]


@pytest.mark.parametrize("name", AWKWARD)
def test_awkward_names_round_trip_through_the_exposition(name: str) -> None:
    inventory = keys_snapshot(
        (ProjectRecord("proj_x", name, "active", (key("key_x", name=name, owner_name=name),)),),
        NOW,
    )
    text = render(inventory)
    info = {"project_id": "proj_x", "project_name": name, "status": "active"}
    assert value(text, "openai_project_info", **info) == 1
    names = {
        labels["api_key_name"]
        for (metric, label_items), _ in samples(text).items()
        if metric == "openai_api_key_info"
        for labels in [dict(label_items)]
    }
    assert names == {name}


label_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=30)


@settings(max_examples=200, deadline=None)
@given(project_name=label_text, key_name=label_text, owner_name=label_text)
def test_any_unicode_label_value_parses_back(
    project_name: str, key_name: str, owner_name: str
) -> None:
    inventory = keys_snapshot(
        (
            ProjectRecord(
                "proj_h",
                project_name,
                "active",
                (key("key_h", name=key_name, owner_name=owner_name),),
            ),
        ),
        NOW,
    )
    text = render(inventory)
    parsed = samples(text)
    info = {"project_id": "proj_h", "project_name": project_name, "status": "active"}
    assert parsed[("openai_project_info", tuple(sorted(info.items())))] == 1
    assert parsed == samples(render_reference(inventory))
    # The same text, ended by # EOF, is valid OpenMetrics with the same samples.
    openmetrics = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in openmetrics_families(text + "# EOF\n")  # type: ignore[no-untyped-call]
        for sample in family.samples
    }
    assert openmetrics == parsed


def test_promtool_finds_nothing_to_lint() -> None:
    inventory = keys_snapshot(
        (
            *projects_of(INVENTORY),
            ProjectRecord("proj_odd", AWKWARD[0], "active", (key("key_odd", name=AWKWARD[2]),)),
        ),
        NOW,
    )
    assert_promtool_accepts(render(inventory))
