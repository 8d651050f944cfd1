"""Reading ``--config.file``: the YAML, the schema per organization, the checks across
organizations, and that each key file can be read (never what it holds).

Every problem is one line naming the organization by its name (by its position only
when the name itself is missing or bad) and the field, prefixed with the flag and the
file, all of them at once in one ``ConfigError``.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from exporter.config import ConfigError
from exporter.organizations.schema import (
    MAX_ORGANIZATIONS,
    OrganizationConfig,
    OrganizationsFile,
    duplicate_names,
    is_valid_name,
    shared_key_files,
)
from exporter.yamlfile import YamlFileError, read_yaml_file

FLAG = "--config.file (OPENAI_EXPORTER_CONFIG_FILE)"
# Far above what 1,000 organizations take; refuses a wrong file (a log, a dump) quickly.
MAX_FILE_BYTES = 1024 * 1024
# An unknown field is quoted: no more of it than this.
_SHOWN = 40
_EXAMPLE = "organizations: [{name: prod, admin_key_file: /run/secrets/openai/prod}]"


def load_organizations(path: Path, *, demo: bool = False) -> OrganizationsFile:
    """The organizations in ``path``, checked in full; ``demo``: run with ``--demo``, where
    each organization is simulated and needs no key file.

    Relative key file paths are from the file's own directory, as in Prometheus' files.
    Raises ``ConfigError`` listing every problem.
    """
    try:
        return _load(path, demo)
    except ConfigError as error:
        raise ConfigError([f"{FLAG}: {path}: {problem}" for problem in error.problems]) from None


def _load(path: Path, demo: bool) -> OrganizationsFile:
    try:
        document = read_yaml_file(path, max_bytes=MAX_FILE_BYTES, what="an organizations file")
    except YamlFileError as error:
        raise ConfigError([str(error)]) from None
    problems, entries = _entries(document)
    directory = path.absolute().parent
    names = [_name(entry) for entry in entries]
    counts = Counter(name for name in names if name is not None)
    problems.extend(duplicate_names(name for name in names if name is not None))
    organizations = []
    for position, (entry, name) in enumerate(zip(entries, names, strict=True), start=1):
        # By its name; by its position too when that name is not unique, or not a name.
        label = f"organization #{position}" if name is None else f"organization {name!r}"
        if name is not None and counts[name] > 1:
            label += f" (#{position})"
        organization, found = _organization(entry, directory, demo)
        problems.extend(f"{label}: {problem}" for problem in found)
        if organization is not None:
            organizations.append(organization)
    problems.extend(shared_key_files(organizations))
    if problems:
        raise ConfigError(problems)
    return OrganizationsFile(organizations=organizations)


def _entries(document: Any) -> tuple[list[str], list[Any]]:
    """The problems of the file's top level, and its organizations' entries; raises when
    there are no entries to check."""
    if not isinstance(document, dict):
        raise ConfigError([f"must be a YAML mapping holding the organizations, like {_EXAMPLE}"])
    known = OrganizationsFile.model_fields
    problems = [f"unknown field {_shown(key)}" for key in document if key not in known]
    entries = document.get("organizations")
    if not isinstance(entries, list):
        given = "is missing" if entries is None else "is not a list"
        problems.append(f"organizations: {given}; like {_EXAMPLE}")
    elif not entries:
        problems.append("organizations: is empty; name at least one organization")
    elif len(entries) > MAX_ORGANIZATIONS:
        problems.append(
            f"organizations: {len(entries)} are more than one exporter serves "
            f"({MAX_ORGANIZATIONS}); spread them over several"
        )
    else:
        return problems, entries
    raise ConfigError(problems)


def _organization(
    entry: Any, directory: Path, demo: bool
) -> tuple[OrganizationConfig | None, list[str]]:
    """The entry as an organization (None when its schema refuses it), and its problems."""
    try:
        organization = OrganizationConfig.model_validate(entry)
    except ValidationError as error:
        return None, _schema_problems(error)
    if organization.admin_key_file is None:
        if demo:
            return organization, []
        required = "admin_key_file: required, a file holding this organization's admin key"
        return organization, [f"{required} (only --demo runs without)"]
    key_file = directory / organization.admin_key_file
    return organization.model_copy(update={"admin_key_file": key_file}), _unreadable(key_file)


def _name(entry: object) -> str | None:
    """The entry's name, if it has a valid one."""
    name = entry.get("name") if isinstance(entry, dict) else None
    return name if isinstance(name, str) and is_valid_name(name) else None


def _unreadable(key_file: Path) -> list[str]:
    # Opened, never read: the key is read again at each refresh, and never shown.
    try:
        with key_file.open("rb"):
            return []
    except OSError as error:
        reason = error.strerror or type(error).__name__
        return [f"admin_key_file {key_file}: cannot be read ({reason})"]


def _schema_problems(error: ValidationError) -> list[str]:
    problems = []
    for detail in error.errors(include_input=False, include_url=False):
        location = tuple(detail["loc"])
        where = ".".join(str(part) for part in location)
        kind = detail["type"]
        if kind == "extra_forbidden":
            field = _shown(location[-1])
            parent = ".".join(str(part) for part in location[:-1])
            problems.append(
                f"{parent}: unknown field {field}" if parent else f"unknown field {field}"
            )
            continue
        if kind == "missing":
            message = "required"
        elif kind in ("model_type", "dict_type"):
            message = "must be a mapping" + ("" if where else " (name, admin_key_file, ...)")
        else:
            message = str(detail["msg"]).removeprefix("Value error, ")
        problems.append(f"{where}: {message}" if where else message)
    return problems


def _shown(key: Any) -> str:
    text = repr(key)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 4] + "...'"
