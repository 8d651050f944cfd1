"""A simulated OpenAI organization: projects, their API keys and the keys' owners.

Plain data plus an `Organization` that keeps projects and per-project keys in
order with O(1) cursor lookups, so listing a 100,000-key organization page by
page stays linear. `build_organization` grows a deterministic one from a seed.
"""

from __future__ import annotations

import binascii
import random
import time
from dataclasses import dataclass, field, replace
from typing import Literal

from exporter.simulator import names
from exporter.simulator.ordered import OrderedCollection, Page

OwnerProjectAccess = Literal["active", "inactive"]
AccessFilter = Literal["active", "inactive", "any"]
ProjectStatus = Literal["active", "archived"]

DAY = 86_400
# Maps base64's "+" and "/" to letters, leaving ids alphanumeric.
_ALPHANUMERIC_BASE64 = bytes.maketrans(b"+/", b"xZ")
# Keys are spread over this many days before `now`, so every age and idle
# threshold a dashboard or alert uses (30, 90, 180, 365 days) is populated.
MAX_KEY_AGE_DAYS = 800


@dataclass(frozen=True, slots=True)
class SimUser:
    id: str
    name: str
    email: str
    role: str  # the user's role in the key's project: "owner" or "member"
    created_at: int


@dataclass(frozen=True, slots=True)
class SimServiceAccount:
    id: str
    name: str
    role: str
    created_at: int


@dataclass(frozen=True, slots=True)
class SimApiKey:
    id: str
    name: str
    redacted_value: str
    created_at: int
    last_used_at: int | None
    owner: SimUser | SimServiceAccount
    owner_project_access: OwnerProjectAccess


@dataclass(frozen=True, slots=True)
class SimProject:
    id: str
    name: str
    created_at: int
    status: ProjectStatus
    archived_at: int | None


class UnknownProjectError(KeyError):
    """No project with that id (never created, or deleted)."""


class Organization:
    """Ordered projects, each with its ordered API keys.

    Ids that are not given are drawn from a generator seeded by `seed`, so the
    same calls give the same ids. `now` is the default creation time; None
    means the wall clock at each call.
    """

    def __init__(self, *, seed: int = 0, now: int | None = None) -> None:
        self._ids = random.Random(seed)
        self._now = now
        self._projects: OrderedCollection[SimProject] = OrderedCollection()
        self._keys: dict[str, OrderedCollection[SimApiKey]] = {}
        self._key_count = 0
        self._default_owner: SimUser | None = None

    # -- ids -------------------------------------------------------------

    def new_id(self, prefix: str, length: int) -> str:
        """A fresh id in the style of the real API (`proj_`, `key_`, `user-`, `svc_acct_`).

        `length` is a multiple of 4; base64 of random bytes is the fastest
        seeded alphanumeric text (the two non-alphanumeric digits are swapped).
        """
        raw = binascii.b2a_base64(self._ids.randbytes(length * 3 // 4), newline=False)
        return prefix + raw.translate(_ALPHANUMERIC_BASE64).decode("ascii")

    def new_project_id(self) -> str:
        return self.new_id("proj_", 24)

    def new_key_id(self) -> str:
        return self.new_id("key_", 16)

    def new_user_id(self) -> str:
        return self.new_id("user-", 24)

    def new_service_account_id(self) -> str:
        return self.new_id("svc_acct_", 24)

    def _clock(self) -> int:
        return self._now if self._now is not None else int(time.time())

    # -- mutations -------------------------------------------------------

    def add_project(
        self,
        name: str,
        *,
        id: str | None = None,
        created_at: int | None = None,
        archived: bool = False,
    ) -> SimProject:
        created = self._clock() if created_at is None else created_at
        project = SimProject(
            id=id if id is not None else self.new_project_id(),
            name=name,
            created_at=created,
            status="archived" if archived else "active",
            archived_at=max(created, self._clock()) if archived else None,
        )
        self._projects.add(project.id, project)
        self._keys[project.id] = OrderedCollection()
        return project

    def archive_project(self, project_id: str, *, archived_at: int | None = None) -> SimProject:
        project = self.project(project_id)
        archived = replace(
            project,
            status="archived",
            archived_at=self._clock() if archived_at is None else archived_at,
        )
        self._projects.replace(project_id, archived)
        return archived

    def delete_project(self, project_id: str) -> None:
        """Remove a project and its keys (the real API only archives; tests need vanishing)."""
        if project_id not in self._projects:
            raise UnknownProjectError(project_id)
        self._projects.remove(project_id)
        self._key_count -= len(self._keys.pop(project_id))

    def add_key(
        self,
        project_id: str,
        name: str,
        *,
        id: str | None = None,
        created_at: int,
        last_used_at: int | None = None,
        owner: SimUser | SimServiceAccount | None = None,
        owner_project_access: OwnerProjectAccess = "active",
        redacted_value: str | None = None,
    ) -> SimApiKey:
        keys = self._project_keys(project_id)
        key_owner = owner if owner is not None else self.default_owner()
        key = SimApiKey(
            id=id if id is not None else self.new_key_id(),
            name=name,
            redacted_value=(
                redacted_value if redacted_value is not None else self._redacted_value(key_owner)
            ),
            created_at=created_at,
            last_used_at=last_used_at,
            owner=key_owner,
            owner_project_access=owner_project_access,
        )
        keys.add(key.id, key)
        self._key_count += 1
        return key

    def delete_key(self, project_id: str, key_id: str) -> None:
        self._project_keys(project_id).remove(key_id)
        self._key_count -= 1

    def default_owner(self) -> SimUser:
        """The user who owns keys added without an explicit owner."""
        if self._default_owner is None:
            self._default_owner = SimUser(
                id=self.new_user_id(),
                name="Default Owner",
                email="default.owner@example.com",
                role="owner",
                created_at=self._clock(),
            )
        return self._default_owner

    # -- queries ---------------------------------------------------------

    def project(self, project_id: str) -> SimProject:
        project = self._projects.get(project_id)
        if project is None:
            raise UnknownProjectError(project_id)
        return project

    def projects(self, include_archived: bool = False) -> list[SimProject]:
        return [p for p in self._projects if include_archived or p.status != "archived"]

    def keys(self, project_id: str) -> list[SimApiKey]:
        """Every key of the project, whatever its owner's access."""
        return list(self._project_keys(project_id))

    def key_count(self) -> int:
        """Keys across all projects, archived ones included."""
        return self._key_count

    def page_projects(
        self, *, include_archived: bool, after: str | None, limit: int
    ) -> Page[SimProject]:
        """One page of the project list; raises UnknownCursorError for an unknown `after`."""
        if include_archived:
            return self._projects.page(after=after, limit=limit)
        return self._projects.page(after=after, limit=limit, keep=_is_active_project)

    def page_keys(
        self, project_id: str, *, access: AccessFilter, after: str | None, limit: int
    ) -> Page[SimApiKey]:
        """One page of a project's keys whose owner access matches `access`."""
        keys = self._project_keys(project_id)
        if access == "any":
            return keys.page(after=after, limit=limit)
        return keys.page(after=after, limit=limit, keep=lambda k: k.owner_project_access == access)

    def _project_keys(self, project_id: str) -> OrderedCollection[SimApiKey]:
        keys = self._keys.get(project_id)
        if keys is None:
            raise UnknownProjectError(project_id)
        return keys

    def _redacted_value(self, owner: SimUser | SimServiceAccount) -> str:
        prefix = "sk-svcacct-" if isinstance(owner, SimServiceAccount) else "sk-proj-"
        visible = self.new_id("", 8)
        return f"{prefix}{visible[:2]}***{visible[4:]}"


def _is_active_project(project: SimProject) -> bool:
    return project.status != "archived"


@dataclass(frozen=True)
class OrganizationSpec:
    """What `build_organization` grows; the same spec always gives the same organization."""

    seed: int = 1
    projects: int = 10
    keys_per_project: int = 5
    archived_fraction: float = 0.1
    never_used_fraction: float = 0.2
    service_account_fraction: float = 0.3
    inactive_owner_fraction: float = 0.1
    awkward_names: bool = True
    now: int | None = None  # None: the wall clock when built


@dataclass
class _ProjectOwners:
    """Who can own keys in one project while it is being generated."""

    active_users: list[SimUser] = field(default_factory=list)
    inactive_users: list[SimUser] = field(default_factory=list)
    service_accounts: list[SimServiceAccount] = field(default_factory=list)


class _Builder:
    def __init__(self, spec: OrganizationSpec) -> None:
        self.spec = spec
        self.now = spec.now if spec.now is not None else int(time.time())
        self.rng = random.Random(spec.seed)
        self.org = Organization(seed=spec.seed, now=self.now)
        # Users belong to the organization and take part in several projects.
        self.users = [self._user(i) for i in range(max(3, min(spec.projects * 2, 5_000)))]
        self.service_account_index = 0
        self.key_index = 0

    def _user(self, index: int) -> SimUser:
        return SimUser(
            id=self.org.new_user_id(),
            name=names.person_name(self.rng, index, self.spec.awkward_names),
            email=f"user{index}@example.com",
            role="member",
            created_at=self.now - (MAX_KEY_AGE_DAYS + 200) * DAY - self.rng.randrange(90 * DAY),
        )

    def build(self) -> Organization:
        spec = self.spec
        total = spec.projects * spec.keys_per_project
        # Stratified ages, shuffled: an even spread from 0 to MAX_KEY_AGE_DAYS
        # even for a small organization, in a seed-dependent order.
        span = MAX_KEY_AGE_DAYS * DAY
        ages = [int((i + self.rng.random()) * span / total) for i in range(total)]
        self.rng.shuffle(ages)
        archived = set(
            self.rng.sample(range(spec.projects), round(spec.projects * spec.archived_fraction))
        )
        for index in range(spec.projects):
            project = self.org.add_project(
                names.project_name(self.rng, index, spec.awkward_names),
                created_at=self.now - span - DAY - self.rng.randrange(60 * DAY),
            )
            if index in archived:
                project = self.org.archive_project(
                    project.id, archived_at=self.now - DAY - self.rng.randrange(30 * DAY)
                )
            start = index * spec.keys_per_project
            self._fill(project, ages[start : start + spec.keys_per_project])
        return self.org

    def _fill(self, project: SimProject, ages: list[int]) -> None:
        spec = self.spec
        rng = self.rng
        owners = _ProjectOwners()
        newest = project.archived_at if project.archived_at is not None else self.now
        for age in ages:
            created = min(self.now - age, newest)
            draw = rng.random()
            access: OwnerProjectAccess = "active"
            owner: SimUser | SimServiceAccount
            if draw < spec.service_account_fraction:
                owner = self._service_account(owners)
            elif draw < spec.service_account_fraction + spec.inactive_owner_fraction:
                owner = self._member(owners.inactive_users, owners)
                access = "inactive"
            else:
                owner = self._member(owners.active_users, owners)
            last_used: int | None = None
            if rng.random() >= spec.never_used_fraction:
                last_used = self._last_use(created, newest)
            self.org.add_key(
                project.id,
                names.key_name(rng, self.key_index, spec.awkward_names),
                created_at=created,
                last_used_at=last_used,
                owner=owner,
                owner_project_access=access,
            )
            self.key_index += 1

    def _last_use(self, created: int, newest: int) -> int:
        # Half the used keys are in daily use; the rest went quiet at any time.
        if self.rng.random() < 0.5:
            return max(created, newest - self.rng.randrange(2 * DAY))
        return created + int(self.rng.random() * (newest - created))

    def _member(self, pool: list[SimUser], owners: _ProjectOwners) -> SimUser:
        """A user of this project from `pool`, which grows now and then (up to 4)."""
        if not pool or (len(pool) < 4 and self.rng.random() < 0.3):
            # The project's first active member is its owner.
            role = "owner" if pool is owners.active_users and not pool else "member"
            pool.append(replace(self._user_outside(owners), role=role))
        return pool[self.rng.randrange(len(pool))]

    def _user_outside(self, owners: _ProjectOwners) -> SimUser:
        """An organization user not yet in this project, hiring one if the draw is taken."""
        taken = {u.id for u in owners.active_users} | {u.id for u in owners.inactive_users}
        candidate = self.users[self.rng.randrange(len(self.users))]
        if candidate.id in taken:
            candidate = self._user(len(self.users))
            self.users.append(candidate)
        return candidate

    def _service_account(self, owners: _ProjectOwners) -> SimServiceAccount:
        # Service accounts belong to one project; most projects need one or two.
        if len(owners.service_accounts) < 2 and (
            not owners.service_accounts or self.rng.random() < 0.2
        ):
            index = self.service_account_index
            self.service_account_index += 1
            owners.service_accounts.append(
                SimServiceAccount(
                    id=self.org.new_service_account_id(),
                    name=names.service_account_name(self.rng, index, self.spec.awkward_names),
                    role="member",
                    created_at=self.now - MAX_KEY_AGE_DAYS * DAY - self.rng.randrange(30 * DAY),
                )
            )
        return owners.service_accounts[self.rng.randrange(len(owners.service_accounts))]


def build_organization(spec: OrganizationSpec) -> Organization:
    """A seeded organization: the same spec always yields the same projects, keys and owners."""
    return _Builder(spec).build()
