"""What ``--config.file`` may say: pydantic models only, strict about unknown fields.

Reading the file, naming each problem and checking the key files is ``loading``'s job;
these models say what one valid file is, whoever builds it.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Annotated

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    field_validator,
    model_validator,
)

from exporter.collectors.catalog import COLLECTOR_NAMES
from exporter.config import check_base_url
from exporter.simulator.faults import ApiEndpoint, FaultKind

NAME_PATTERN = r"[a-z0-9][a-z0-9_-]*"
# A target name is a URL parameter and a label value: 63 keeps it a DNS label too.
NAME_MAX_LENGTH = 63
# One exporter serves this many at most; more are spread over several (README).
MAX_ORGANIZATIONS = 1000
_NAME = re.compile(NAME_PATTERN)


def is_valid_name(name: object) -> bool:
    """Whether ``name`` can be a target name: NAME_PATTERN, at most NAME_MAX_LENGTH."""
    return isinstance(name, str) and len(name) <= NAME_MAX_LENGTH and bool(_NAME.fullmatch(name))


def _regex(value: object) -> object:
    if isinstance(value, str):
        try:
            return re.compile(value)
        except re.error as error:
            raise ValueError(f"not a regular expression: {error}") from None
    if isinstance(value, re.Pattern):
        return value
    raise ValueError("must be a string holding a regular expression")


Regex = Annotated[re.Pattern[str], BeforeValidator(_regex)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


class DemoFault(_Model):
    """A failure every matching request of a simulated organization suffers (until the
    exporter stops): see ``exporter.simulator.faults.Fault`` for the kinds."""

    endpoint: ApiEndpoint | None = None  # None: every endpoint
    kind: FaultKind = "status"
    status: int = Field(default=500, ge=400, le=599)  # for kind "status"
    delay: float = Field(default=5.0, ge=0, le=300)  # seconds, for kind "slow"


class DemoOrganization(_Model):
    """A simulated organization, read only with ``--demo``; its sizes are those of
    ``exporter.simulator.organization.OrganizationSpec`` and default to today's demo."""

    seed: int = 0
    projects: int = Field(default=8, ge=1, le=10_000)
    keys_per_project: int = Field(default=6, ge=0, le=1_000)
    latency: float = Field(default=0.0, ge=0, le=60)  # seconds added to every request
    faults: list[DemoFault] = Field(default_factory=list)


class OrganizationConfig(_Model):
    """One organization, one scrape target; unset values fall back to the flags and
    environment (``effective.organization_settings``)."""

    name: str
    admin_key_file: Path | None = None  # required unless --demo (loading checks it)
    base_url: str | None = None
    collectors: dict[str, StrictBool] = Field(default_factory=dict)
    project_include: Regex | None = None
    project_exclude: Regex | None = None
    include_archived: StrictBool | None = None
    demo: DemoOrganization | None = None

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not is_valid_name(value):
            raise ValueError(
                f"must match {NAME_PATTERN} (lower-case letters, digits, '_' and '-', "
                f"not starting with '_' or '-'), at most {NAME_MAX_LENGTH} characters"
            )
        return value

    @field_validator("base_url")
    @classmethod
    def _check_base_url(cls, value: str | None) -> str | None:
        return None if value is None else check_base_url(value)

    @field_validator("collectors", mode="before")
    @classmethod
    def _check_collectors(cls, value: object) -> object:
        # Before the values are checked: a misspelt name is reported even when a value is
        # wrong too (a name is the likelier slip, and a wrong one silently keeps the default).
        names = value if isinstance(value, dict) else {}
        unknown = [name for name in names if name not in COLLECTOR_NAMES]
        if unknown:
            raise ValueError(
                f"unknown collector {', '.join(map(repr, unknown))}; "
                f"known: {', '.join(COLLECTOR_NAMES)}"
            )
        return value

    @field_validator("project_include")
    @classmethod
    def _check_include(cls, value: re.Pattern[str] | None) -> re.Pattern[str] | None:
        if value is not None and not value.pattern:
            raise ValueError("is empty, which would drop every project; leave it out to keep all")
        return value


def duplicate_names(names: Iterable[str]) -> list[str]:
    """One line per name given to more than one organization."""
    counts = Counter(names)
    return [f"duplicate organization name {name!r}" for name, n in counts.items() if n > 1]


def shared_key_files(organizations: Sequence[OrganizationConfig]) -> list[str]:
    """One line per key file several organizations name: one organization's key, or a
    copy-paste slip; either way not two organizations."""
    owners: dict[str, list[str]] = {}
    for organization in organizations:
        if organization.admin_key_file is not None:
            path = os.path.normpath(organization.admin_key_file)
            owners.setdefault(path, []).append(organization.name)
    problems = []
    for path, names in owners.items():
        if len(names) > 1:
            listed = ", ".join(map(repr, names[:-1])) + f" and {names[-1]!r}"
            problems.append(f"organizations {listed} name the same admin_key_file {path}")
    return problems


class OrganizationsFile(_Model):
    """The whole file: at least one organization, names unique, no key file named twice."""

    organizations: list[OrganizationConfig] = Field(min_length=1, max_length=MAX_ORGANIZATIONS)

    @model_validator(mode="after")
    def _check_clashes(self) -> OrganizationsFile:
        problems = duplicate_names(o.name for o in self.organizations)
        problems += shared_key_files(self.organizations)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def organization(self, name: str) -> OrganizationConfig | None:
        """The organization named ``name`` (a probe's target), if the file has it."""
        return next((o for o in self.organizations if o.name == name), None)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(o.name for o in self.organizations)
