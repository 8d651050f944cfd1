"""The organization model: what tests and the benchmark build and mutate."""

from __future__ import annotations

import re

import pytest

from exporter.simulator.ordered import UnknownCursorError
from exporter.simulator.organization import (
    Organization,
    OwnerProjectAccess,
    SimServiceAccount,
    SimUser,
    UnknownProjectError,
)

NOW = 1_800_000_000


def test_ids_look_like_the_real_api() -> None:
    org = Organization(seed=3, now=NOW)
    project = org.add_project("p")
    key = org.add_key(project.id, "k", created_at=NOW)
    assert re.fullmatch(r"proj_[A-Za-z0-9]{24}", project.id)
    assert re.fullmatch(r"key_[A-Za-z0-9]{16}", key.id)
    assert isinstance(key.owner, SimUser)
    assert re.fullmatch(r"user-[A-Za-z0-9]{24}", key.owner.id)
    assert re.fullmatch(r"svc_acct_[A-Za-z0-9]{24}", org.new_service_account_id())
    assert key.redacted_value.startswith("sk-proj-")


def test_same_seed_same_ids() -> None:
    first, second = Organization(seed=5, now=NOW), Organization(seed=5, now=NOW)
    assert first.add_project("a").id == second.add_project("a").id
    assert Organization(seed=6, now=NOW).add_project("a").id != first.add_project("b").id


def test_keys_keep_insertion_order_and_counts_follow_deletes() -> None:
    org = Organization(now=NOW)
    first = org.add_project("first", id="proj_first")
    second = org.add_project("second", id="proj_second")
    ids = [org.add_key(first.id, f"k{i}", created_at=NOW - i).id for i in range(5)]
    org.add_key(second.id, "other", id="key_other", created_at=NOW)
    assert [k.id for k in org.keys(first.id)] == ids
    assert org.key_count() == 6

    org.delete_key(first.id, ids[2])
    assert [k.id for k in org.keys(first.id)] == ids[:2] + ids[3:]
    assert org.key_count() == 5

    org.delete_project(first.id)
    assert [p.id for p in org.projects(include_archived=True)] == ["proj_second"]
    assert org.key_count() == 1
    with pytest.raises(UnknownProjectError):
        org.keys(first.id)


def test_unknown_project_and_key_are_errors() -> None:
    org = Organization(now=NOW)
    project = org.add_project("p")
    with pytest.raises(UnknownProjectError):
        org.add_key("proj_missing", "k", created_at=NOW)
    with pytest.raises(UnknownProjectError):
        org.delete_project("proj_missing")
    with pytest.raises(KeyError):
        org.delete_key(project.id, "key_missing")


def test_duplicate_ids_are_refused() -> None:
    org = Organization(now=NOW)
    org.add_project("p", id="proj_same")
    with pytest.raises(ValueError, match="duplicate"):
        org.add_project("q", id="proj_same")
    org.add_key("proj_same", "k", id="key_same", created_at=NOW)
    with pytest.raises(ValueError, match="duplicate"):
        org.add_key("proj_same", "k2", id="key_same", created_at=NOW)


def test_archived_projects_are_listed_only_when_asked() -> None:
    org = Organization(now=NOW)
    org.add_project("live", id="proj_live")
    archived = org.add_project("old", id="proj_old", archived=True, created_at=NOW - 100)
    assert archived.status == "archived"
    assert archived.archived_at == NOW
    assert [p.id for p in org.projects(include_archived=False)] == ["proj_live"]
    assert [p.id for p in org.projects(include_archived=True)] == ["proj_live", "proj_old"]

    org.archive_project("proj_live", archived_at=NOW - 5)
    assert org.projects(include_archived=False) == []
    assert org.project("proj_live").archived_at == NOW - 5


def test_owners_and_access_are_kept() -> None:
    org = Organization(now=NOW)
    project = org.add_project("p")
    robot = SimServiceAccount(id="svc_acct_x", name="bot", role="member", created_at=NOW)
    key = org.add_key(project.id, "k", created_at=NOW, owner=robot, owner_project_access="inactive")
    assert key.owner is robot
    assert key.owner_project_access == "inactive"
    assert key.redacted_value.startswith("sk-svcacct-")
    assert key.last_used_at is None


def test_pages_follow_cursors_through_filtered_items() -> None:
    org = Organization(now=NOW)
    project = org.add_project("p")
    for i in range(7):
        access: OwnerProjectAccess = "inactive" if i % 2 else "active"
        org.add_key(project.id, str(i), id=f"key_{i}", created_at=NOW, owner_project_access=access)

    first = org.page_keys(project.id, access="active", after=None, limit=2)
    assert [k.id for k in first.items] == ["key_0", "key_2"]
    assert first.has_more
    # A cursor naming a filtered-out key still marks a place in the list.
    after_hidden = org.page_keys(project.id, access="active", after="key_3", limit=10)
    assert [k.id for k in after_hidden.items] == ["key_4", "key_6"]
    assert not after_hidden.has_more
    exact = org.page_keys(project.id, access="any", after="key_4", limit=2)
    assert [k.id for k in exact.items] == ["key_5", "key_6"]
    assert not exact.has_more
    with pytest.raises(UnknownCursorError):
        org.page_keys(project.id, access="any", after="key_gone", limit=2)


def test_paging_sees_deletes_made_between_pages() -> None:
    org = Organization(now=NOW)
    project = org.add_project("p")
    for i in range(4):
        org.add_key(project.id, str(i), id=f"key_{i}", created_at=NOW)
    page = org.page_keys(project.id, access="any", after=None, limit=2)
    org.delete_key(project.id, "key_2")
    rest = org.page_keys(project.id, access="any", after=page.items[-1].id, limit=2)
    assert [k.id for k in rest.items] == ["key_3"]
