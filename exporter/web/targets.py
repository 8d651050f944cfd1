"""The ``target`` parameter of ``/probe``: exactly one, naming a configured organization.

Every refusal is one line that never echoes a long or odd target back: only a value
that could be a target name (``NAME_PATTERN``, at most ``NAME_MAX_LENGTH``) is quoted.
"""

from __future__ import annotations

from collections.abc import Collection

from multidict import MultiMapping

from exporter.organizations import NAME_MAX_LENGTH
from exporter.organizations.schema import is_valid_name

PARAMETER = "target"


class TargetError(ValueError):
    """Why a probe's target is refused: one line for the 400's body."""


def probe_target(query: MultiMapping[str], organizations: Collection[str]) -> str:
    """The organization a probe asks for, or ``TargetError``."""
    given = query.getall(PARAMETER, [])
    if not given:
        raise TargetError(f"missing {PARAMETER} parameter: /probe?{PARAMETER}=<organization>")
    if len(given) > 1:
        raise TargetError(f"{PARAMETER} given {len(given)} times: give exactly one")
    (target,) = given
    if len(target) > NAME_MAX_LENGTH:
        raise TargetError(f"{PARAMETER} is longer than a name can be ({NAME_MAX_LENGTH})")
    if target not in organizations:
        shown = repr(target) if is_valid_name(target) else "(not a valid name)"
        raise TargetError(f"unknown {PARAMETER} {shown}: not an organization of --config.file")
    return target
