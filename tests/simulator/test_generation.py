"""Seeded organizations: deterministic, and rich enough to exercise every metric and alert."""

from __future__ import annotations

import json
import unicodedata
from dataclasses import asdict, replace

import pytest

from exporter.simulator.organization import (
    DAY,
    Organization,
    OrganizationSpec,
    SimApiKey,
    SimServiceAccount,
    SimUser,
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


def _extras_fingerprint(org: Organization) -> str:
    projects = org.projects(include_archived=True)
    return json.dumps(
        [asdict(k) for k in org.admin_keys()]
        + [asdict(m) for m in org.members()]
        + [asdict(i) for i in org.invites()]
        + [asdict(c) for c in org.certificates()]
        + [asdict(a) for p in projects for a in org.service_accounts(p.id)],
        sort_keys=True,
    )


def test_same_seed_same_organization_level_resources() -> None:
    spec = OrganizationSpec(seed=42, projects=20, keys_per_project=8, now=NOW)
    assert _extras_fingerprint(build_organization(spec)) == _extras_fingerprint(
        build_organization(spec)
    )
    other = OrganizationSpec(seed=43, projects=20, keys_per_project=8, now=NOW)
    assert _extras_fingerprint(build_organization(spec)) != _extras_fingerprint(
        build_organization(other)
    )


def test_new_resource_counts_leave_projects_and_keys_alone() -> None:
    base = OrganizationSpec(seed=5, projects=15, keys_per_project=6, now=NOW)
    bigger = replace(
        base,
        admin_keys=40,
        invites=30,
        certificates=20,
        departed_users=3,
        keyless_service_account_fraction=1.0,
    )
    none = replace(base, admin_keys=0, invites=0, certificates=0, departed_users=0)
    assert _fingerprint(build_organization(base)) == _fingerprint(build_organization(bigger))
    assert _fingerprint(build_organization(base)) == _fingerprint(build_organization(none))


def test_sizes_of_organization_level_resources() -> None:
    spec = OrganizationSpec(
        projects=12, admin_keys=9, invites=8, certificates=7, departed_users=2, now=NOW
    )
    org = build_organization(spec)
    assert len(org.admin_keys()) == 9
    assert len(org.invites()) == 8
    assert len(org.certificates()) == 7
    owners = {k.owner.id for k in _all_keys(org) if isinstance(k.owner, SimUser)}
    members = {m.id for m in org.members()}
    assert len(owners - members) == 2
    empty = build_organization(replace(spec, admin_keys=0, invites=0, certificates=0))
    assert (empty.admin_keys(), empty.invites(), empty.certificates()) == ([], [], [])


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_default_organization_level_resources_cover_every_case(seed: int) -> None:
    org = build_organization(OrganizationSpec(seed=seed, now=NOW))
    admin = org.admin_keys()
    assert any(k.expires_at is None for k in admin)
    assert any(k.expires_at is not None and 0 < k.expires_at - NOW <= 7 * DAY for k in admin)
    assert any(k.last_used_at is not None and NOW - k.last_used_at > 30 * DAY for k in admin)
    assert any(k.last_used_at is None and NOW - k.created_at > 7 * DAY for k in admin)
    assert any(NOW - k.created_at > 180 * DAY for k in admin)
    assert {k.owner.type for k in admin} == {"user", "service_account"}
    assert any(k.name is None for k in admin)
    assert [k.created_at for k in admin] == sorted(k.created_at for k in admin)
    assert len({k.redacted_value for k in admin}) == len(admin)
    assert all(k.value.startswith("sk-admin-") for k in admin)

    certificates = org.certificates()
    assert any(c.expires_at < NOW for c in certificates)
    assert any(0 < c.expires_at - NOW <= 30 * DAY for c in certificates)
    assert any(c.expires_at - NOW > 365 * DAY for c in certificates)
    assert any(not c.active for c in certificates)
    assert all(c.valid_at < c.expires_at for c in certificates)

    invites = org.invites()
    assert {i.status for i in invites} == {"pending", "accepted", "expired"}
    for invite in invites:
        assert invite.expires_at is not None
        assert (invite.accepted_at is not None) == (invite.status == "accepted")
        if invite.status != "accepted":
            assert (invite.status == "expired") == (invite.expires_at <= NOW)

    members = org.members()
    roles = {m.role for m in members}
    assert {"owner", "reader", "member"} <= roles
    owners = {k.owner.id for k in _all_keys(org) if isinstance(k.owner, SimUser)}
    departed = owners - {m.id for m in members}
    assert departed  # users who left the organization but still own project keys
    assert all(m.added_at <= NOW for m in members)


def test_members_know_their_last_key_use() -> None:
    org = build_organization(OrganizationSpec(seed=4, projects=30, now=NOW))
    last: dict[str, int | None] = {}
    for key in _all_keys(org):
        if isinstance(key.owner, SimUser):
            seen = last.get(key.owner.id)
            used = key.last_used_at
            last[key.owner.id] = max(seen or 0, used or 0) or None
    for member in org.members():
        assert member.api_key_last_used_at == last.get(member.id)
    assert any(m.api_key_last_used_at is None for m in org.members())


def test_service_accounts_are_the_projects_own() -> None:
    org = build_organization(OrganizationSpec(seed=9, projects=40, now=NOW))
    keyless = 0
    for project in org.projects(include_archived=True):
        accounts = {a.id for a in org.service_accounts(project.id)}
        owning = {
            k.owner.id for k in org.keys(project.id) if isinstance(k.owner, SimServiceAccount)
        }
        assert owning <= accounts
        keyless += len(accounts - owning)
    assert keyless > 0
    assert {
        a.role for p in org.projects(include_archived=True) for a in org.service_accounts(p.id)
    } == {"owner", "member"}


def test_a_large_organization_builds_with_its_extras() -> None:
    org = build_organization(OrganizationSpec(projects=1_000, keys_per_project=20, now=NOW))
    assert org.key_count() == 20_000
    assert len(org.members()) > 1_000
    assert len(org.admin_keys()) == 6
