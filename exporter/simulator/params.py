"""Query parameters of the list endpoints, checked the way the real API checks them."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from exporter.simulator.errors import ApiError
from exporter.simulator.organization import AccessFilter, SortOrder

MIN_LIMIT = 1
MAX_LIMIT = 100
DEFAULT_LIMIT = 20

_INTEGER = re.compile(r"-?[0-9]+")
_ACCESS_VALUES: tuple[AccessFilter, ...] = ("active", "inactive", "any")
_ORDER_VALUES: tuple[SortOrder, ...] = ("asc", "desc")


@dataclass(frozen=True, slots=True)
class PageQuery:
    limit: int
    after: str | None


def page_query(query: Mapping[str, str], *, default_limit: int = DEFAULT_LIMIT) -> PageQuery:
    return PageQuery(
        limit=_limit(query.get("limit"), default_limit), after=query.get("after") or None
    )


def include_archived(query: Mapping[str, str]) -> bool:
    raw = query.get("include_archived")
    if raw is None:
        return False
    value = raw.lower()
    if value not in ("true", "false"):
        raise ApiError(
            400,
            f"Invalid type for 'include_archived': expected a boolean, but got '{raw}' instead.",
            param="include_archived",
            code="invalid_type",
        )
    return value == "true"


def owner_project_access(query: Mapping[str, str]) -> AccessFilter:
    """The access filter; omitted means membership visibility, which hides inactive owners."""
    raw = query.get("owner_project_access")
    if raw is None:
        return "active"
    if raw not in _ACCESS_VALUES:
        raise ApiError(
            400,
            f"Invalid value: '{raw}'. Supported values are: 'active', 'inactive', and 'any'.",
            param="owner_project_access",
            code="invalid_value",
        )
    return raw


def order(query: Mapping[str, str], default: SortOrder) -> SortOrder:
    """`order` = asc | desc (admin keys default to asc, certificates to desc)."""
    raw = query.get("order")
    if raw is None:
        return default
    if raw not in _ORDER_VALUES:
        raise ApiError(
            400,
            f"Invalid value: '{raw}'. Supported values are: 'asc' and 'desc'.",
            param="order",
            code="invalid_value",
        )
    return raw


def emails(values: list[str]) -> frozenset[str] | None:
    """The users listing's `emails` filter (repeated, with or without `[]`); None: no filter."""
    return frozenset(values) if values else None


def unknown_cursor(after: str) -> ApiError:
    return ApiError(
        400,
        f"Invalid 'after': no object with id '{after}' in this list.",
        param="after",
    )


def _limit(raw: str | None, default: int) -> int:
    if raw is None:
        return default
    if not _INTEGER.fullmatch(raw):
        raise ApiError(
            400,
            "Invalid type for 'limit': expected an integer, but got a string instead.",
            param="limit",
            code="invalid_type",
        )
    value = int(raw)
    if value < MIN_LIMIT:
        raise ApiError(
            400,
            f"Invalid 'limit': integer below minimum value. Expected a value >= {MIN_LIMIT}, "
            f"but got {value} instead.",
            param="limit",
            code="integer_below_min_value",
        )
    if value > MAX_LIMIT:
        raise ApiError(
            400,
            f"Invalid 'limit': integer above maximum value. Expected a value <= {MAX_LIMIT}, "
            f"but got {value} instead.",
            param="limit",
            code="integer_above_max_value",
        )
    return value
