"""Seeded organizations: deterministic, and rich enough to exercise every metric and alert."""

from __future__ import annotations

import json
import unicodedata
from dataclasses import asdict

import pytest

from exporter.simulator.organization import (
    DAY,
    Organization,
    OrganizationSpec,
    SimApiKey,
    SimServiceAccount,
    build_organization,
)

NOW = 1_800_000_000


def _all_keys(org: Organization) -> list[SimApiKey]:
    return [k for p in org.projects(include_archived=True) for k in org.keys(p.id)]


def _fingerprint(org: Organization) -> str:
    projects = org.projects(include_archived=True)
    return json.dumps(
        [asdict(p) for p in projects] + [asdict(k) for k in _all_keys(org)], sort_keys=True
    )


def test_same_seed_same_organization() -> None:
    spec = OrganizationSpec(seed=42, projects=20, keys_per_project=8, now=NOW)
    assert _fingerprint(build_organization(spec)) == _fingerprint(build_organization(spec))


def test_other_seed_other_organization() -> None:
    first = build_organization(OrganizationSpec(seed=1, now=NOW))
    second = build_organization(OrganizationSpec(seed=2, now=NOW))
    assert _fingerprint(first) != _fingerprint(second)


def test_sizes_follow_the_spec() -> None:
    org = build_organization(OrganizationSpec(projects=30, keys_per_project=7, now=NOW))
    projects = org.projects(include_archived=True)
    assert len(projects) == 30
    assert org.key_count() == 210
    assert all(len(org.keys(p.id)) == 7 for p in projects)
    assert len({k.id for k in _all_keys(org)}) == 210
    assert sum(p.status == "archived" for p in projects) == 3  # 10% of 30


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_default_organization_covers_every_threshold(seed: int) -> None:
    """Every age and idle threshold the dashboards and alerts use has keys on both sides."""
    keys = _all_keys(build_organization(OrganizationSpec(seed=seed, now=NOW)))
    ages = [NOW - k.created_at for k in keys]
    used = [k for k in keys if k.last_used_at is not None]
    never_used = [k for k in keys if k.last_used_at is None]
    assert any(age > 365 * DAY for age in ages)
    assert any(180 * DAY < age <= 365 * DAY for age in ages)
    assert any(age < 30 * DAY for age in ages)
    assert max(ages) <= 800 * DAY
    assert any(NOW - k.last_used_at > 90 * DAY for k in used if k.last_used_at is not None)
    assert any(NOW - k.last_used_at < 7 * DAY for k in used if k.last_used_at is not None)
    assert any(NOW - k.created_at > 30 * DAY for k in never_used)
    assert all(k.created_at <= k.last_used_at <= NOW for k in used if k.last_used_at is not None)


def test_owner_mix_follows_the_fractions() -> None:
    keys = _all_keys(build_organization(OrganizationSpec(projects=100, keys_per_project=20)))
    service_owned = sum(isinstance(k.owner, SimServiceAccount) for k in keys)
    inactive = sum(k.owner_project_access == "inactive" for k in keys)
    never_used = sum(k.last_used_at is None for k in keys)
    assert 0.25 < service_owned / len(keys) < 0.35
    assert 0.07 < inactive / len(keys) < 0.13
    assert 0.17 < never_used / len(keys) < 0.23
    # Only user memberships are inactive: service accounts live and die with their project.
    assert not any(
        isinstance(k.owner, SimServiceAccount) and k.owner_project_access == "inactive"
        for k in keys
    )


def test_owners_are_consistent_within_a_project() -> None:
    org = build_organization(OrganizationSpec(projects=50, keys_per_project=20, now=NOW))
    for project in org.projects(include_archived=True):
        access_by_owner: dict[str, set[str]] = {}
        for key in org.keys(project.id):
            access_by_owner.setdefault(key.owner.id, set()).add(key.owner_project_access)
        assert all(len(seen) == 1 for seen in access_by_owner.values()), project.id


def test_archived_projects_have_no_activity_after_archiving() -> None:
    org = build_organization(OrganizationSpec(projects=40, archived_fraction=0.5, now=NOW))
    for project in org.projects(include_archived=True):
        if project.archived_at is None:
            continue
        for key in org.keys(project.id):
            assert key.created_at <= project.archived_at
            assert key.last_used_at is None or key.last_used_at <= project.archived_at


def test_awkward_names_appear_and_survive_json() -> None:
    org = build_organization(OrganizationSpec(projects=20, now=NOW))
    names = [p.name for p in org.projects(include_archived=True)]
    names += [k.name for k in _all_keys(org)] + [k.owner.name for k in _all_keys(org)]
    for needle in ('"', "\\", "\n", "🚀"):
        assert any(needle in name for name in names), needle
    scripts = {
        unicodedata.name(char).split()[0] for name in names for char in name if char.isalpha()
    }
    assert {"CYRILLIC", "CJK"} <= scripts
    assert json.loads(json.dumps(names, ensure_ascii=False)) == names


def test_plain_names_when_awkward_names_are_off() -> None:
    org = build_organization(OrganizationSpec(projects=20, awkward_names=False, now=NOW))
    names = [p.name for p in org.projects(include_archived=True)]
    names += [k.name for k in _all_keys(org)] + [k.owner.name for k in _all_keys(org)]
    assert all(name.isascii() and name.isprintable() and '"' not in name for name in names)


def test_empty_organization() -> None:
    org = build_organization(OrganizationSpec(projects=0, now=NOW))
    assert org.projects(include_archived=True) == []
    assert org.key_count() == 0
