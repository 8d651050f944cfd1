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


def unknown_cursor(after: str, *, param: str = "after") -> ApiError:
    return ApiError(
        400,
        f"Invalid '{param}': no object with id '{after}' in this list.",
        param=param,
    )


@dataclass(frozen=True, slots=True)
class CursorQuery:
    """A listing with both cursors (the audit log): at most one of them is given."""

    limit: int
    after: str | None
    before: str | None


def cursor_query(query: Mapping[str, str]) -> CursorQuery:
    page = page_query(query)
    before = query.get("before") or None
    if page.after is not None and before is not None:
        raise ApiError(
            400, "Invalid request: give either 'after' or 'before', not both.", param="before"
        )
    return CursorQuery(page.limit, page.after, before)


def effective_at_range(query: Mapping[str, str]) -> tuple[int | None, int | None]:
    """`effective_at[gt|gte|lt|lte]` as one inclusive (since, until) range; None: unbounded."""
    gt, gte, lt, lte = (_integer(query, f"effective_at[{op}]") for op in ("gt", "gte", "lt", "lte"))
    lows = [bound for bound in (None if gt is None else gt + 1, gte) if bound is not None]
    highs = [bound for bound in (None if lt is None else lt - 1, lte) if bound is not None]
    return (max(lows) if lows else None, min(highs) if highs else None)


def id_filter(values: list[str]) -> frozenset[str] | None:
    """A repeated filter (`event_types[]`, `project_ids[]`, ...); None: no filter."""
    return frozenset(values) if values else None


def _integer(query: Mapping[str, str], name: str) -> int | None:
    raw = query.get(name)
    if raw is None:
        return None
    if not _INTEGER.fullmatch(raw):
        raise ApiError(
            400,
            f"Invalid type for '{name}': expected an integer, but got '{raw}' instead.",
            param=name,
            code="invalid_type",
        )
    return int(raw)


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
