"""The usage and costs endpoints: their queries, page tokens, bucket pages and quirks.

They page by `page` = the previous answer's `next_page`, an opaque token; here
it encodes where the next page starts (a bucket, and how many of its results
were already sent) with a checksum over the endpoint and the bucket width, so
a token from elsewhere, or a made-up one, is refused with 400.
"""

from __future__ import annotations

import base64
import binascii
import re
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from json.encoder import encode_basestring
from typing import Literal

from multidict import MultiMapping

from exporter.simulator import wire
from exporter.simulator.errors import ApiError
from exporter.simulator.usage import DAY, MICRO, GroupKey
from exporter.simulator.wire import JsonObject, RawJson

# How often `amount.value` is sent as a JSON string, a quirk users report.
CostAmounts = Literal["never", "sometimes", "always"]
COST_AMOUNTS: tuple[CostAmounts, ...] = ("never", "sometimes", "always")
# "sometimes": every STRING_EVERY-th result of a bucket, shifted by the day.
STRING_EVERY = 3

# (default, max) of `limit` per bucket width.
USAGE_LIMITS: dict[str, tuple[int, int]] = {"1m": (60, 1_440), "1h": (24, 168), "1d": (7, 31)}
COSTS_LIMITS: dict[str, tuple[int, int]] = {"1d": (7, 180)}
WIDTHS: dict[str, int] = {"1m": 60, "1h": 3_600, "1d": DAY}

_INTEGER = re.compile(r"-?[0-9]+")


@dataclass(frozen=True, slots=True)
class BucketPaging:
    """Legal paging the real API may do, for tests: pages of fewer buckets than `limit`
    (`max_buckets_per_page`), and at most `max_results_per_page` results a page,
    which splits a bucket's results over consecutive pages (the bucket is listed
    again, same start, with the rest). None: no such limit."""

    max_buckets_per_page: int | None = None
    max_results_per_page: int | None = None

    def __post_init__(self) -> None:
        for value in (self.max_buckets_per_page, self.max_results_per_page):
            if value is not None and value < 1:
                raise ValueError("paging limits must be at least 1, or None")


@dataclass(frozen=True, slots=True)
class BucketQuery:
    start_time: int
    end_time: int | None  # None: the simulator's now
    width_name: str
    width: int  # seconds
    limit: int
    page: tuple[int, int] | None  # (bucket start, results of it already sent)
    page_token: str | None
    group_by: tuple[str, ...]
    filters: dict[str, tuple[str, ...]]  # field -> allowed values

    @property
    def first(self) -> int:
        """The start of the bucket holding start_time (UTC-aligned)."""
        return self.start_time - self.start_time % self.width


def parse_query(
    query: MultiMapping[str],
    *,
    endpoint: str,
    limits: Mapping[str, tuple[int, int]],
    group_fields: Sequence[str],
    filters: Mapping[str, str],
) -> BucketQuery:
    """The checked query of a usage or costs request; ApiError(400) for a bad one."""
    raw_start = query.get("start_time")
    if raw_start is None:
        raise ApiError(
            400,
            "Missing required parameter: 'start_time'.",
            param="start_time",
            code="missing_required_parameter",
        )
    start = _integer(raw_start, "start_time")
    raw_end = query.get("end_time")
    end = None if raw_end is None else _integer(raw_end, "end_time")
    width_name = query.get("bucket_width") or "1d"
    if width_name not in limits:
        supported = ", ".join(f"'{w}'" for w in limits)
        raise ApiError(
            400,
            f"Invalid value: '{width_name}'. Supported values are: {supported}.",
            param="bucket_width",
            code="invalid_value",
        )
    default, maximum = limits[width_name]
    raw_limit = query.get("limit")
    limit = default if raw_limit is None else _integer(raw_limit, "limit")
    if limit < 1:
        raise ApiError(
            400,
            f"Invalid 'limit': integer below minimum value. Expected a value >= 1, "
            f"but got {limit} instead.",
            param="limit",
            code="integer_below_min_value",
        )
    if limit > maximum:
        raise ApiError(
            400,
            f"Invalid 'limit': integer above maximum value. Expected a value <= {maximum} "
            f"for bucket_width={width_name}, but got {limit} instead.",
            param="limit",
            code="integer_above_max_value",
        )
    group_by: list[str] = []
    for value in _all(query, "group_by"):
        if value not in group_fields:
            supported = ", ".join(f"'{f}'" for f in group_fields)
            raise ApiError(
                400,
                f"Invalid value for 'group_by': '{value}'. Supported values are: {supported}.",
                param="group_by",
                code="invalid_value",
            )
        if value not in group_by:
            group_by.append(value)
    width = WIDTHS[width_name]
    token = query.get("page") or None
    page = None
    if token is not None:
        page = decode_token(token, endpoint, width_name)
        if page is None or page[0] % width or page[0] < start - start % width:
            raise ApiError(
                400, f"Invalid 'page': '{token}' is not a page of this query.", param="page"
            )
    return BucketQuery(
        start_time=start,
        end_time=end,
        width_name=width_name,
        width=width,
        limit=limit,
        page=page,
        page_token=token,
        group_by=tuple(group_by),
        filters={
            field: tuple(values) for name, field in filters.items() if (values := _all(query, name))
        },
    )


def encode_token(endpoint: str, width_name: str, start: int, offset: int) -> str:
    body = f"{start}:{offset}"
    check = zlib.crc32(f"{endpoint}/{width_name}/{body}".encode())
    return "page_" + base64.urlsafe_b64encode(f"{body}:{check:08x}".encode()).decode().rstrip("=")


def decode_token(token: str, endpoint: str, width_name: str) -> tuple[int, int] | None:
    """(bucket start, offset) of a token this endpoint issued; None for any other string."""
    if not token.startswith("page_"):
        return None
    raw = token[5:]
    try:
        text = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    parts = text.split(":")
    if len(parts) != 3 or not all(_INTEGER.fullmatch(p) for p in parts[:2]):
        return None
    start, offset = int(parts[0]), int(parts[1])
    if offset < 0 or encode_token(endpoint, width_name, start, offset) != token:
        return None
    return start, offset


# (bucket start, now) -> the bucket's results (encoded or not), in a stable order.
ResultsOf = Callable[[int, int], Sequence[JsonObject | RawJson]]
# (start, offset, max buckets, bounded) -> (buckets, next_page token or None).
BucketPager = Callable[[int, int, int, bool], tuple[list[JsonObject], str | None]]


def make_pager(
    q: BucketQuery,
    *,
    endpoint: str,
    results_of: ResultsOf,
    clock: Callable[[], float],
    paging: Callable[[], BucketPaging],
) -> BucketPager:
    """Pages of the query's buckets: from `start` (skipping `offset` of its results), at
    most `max_buckets` of them; `bounded` False lists buckets past end_time too (the
    oversized_page fault) and ignores the paging quirks."""

    def pager(
        start: int, offset: int, max_buckets: int, bounded: bool
    ) -> tuple[list[JsonObject], str | None]:
        now = int(clock())
        # Without end_time: up to now, the open bucket holding `now` included.
        end = q.end_time if q.end_time is not None else now + 1
        quirks = paging() if bounded else BucketPaging()
        most = min(max_buckets, quirks.max_buckets_per_page or max_buckets)
        budget = quirks.max_results_per_page
        buckets: list[JsonObject] = []
        at = start
        while len(buckets) < most and (at < end or not bounded):
            rest = results_of(at, now)[offset:]
            if budget is not None and len(rest) > budget:
                if budget == 0 and buckets:  # this page is full: the bucket goes on next page
                    return buckets, encode_token(endpoint, q.width_name, at, offset)
                take = max(budget, 1)
                buckets.append(wire.bucket(at, at + q.width, list(rest[:take])))
                return buckets, encode_token(endpoint, q.width_name, at, offset + take)
            buckets.append(wire.bucket(at, at + q.width, list(rest)))
            if budget is not None:
                budget -= len(rest)
            offset = 0
            at += q.width
        more = bounded and at < end
        return buckets, encode_token(endpoint, q.width_name, at, 0) if more else None

    return pager


def usage_results(
    groups: Mapping[GroupKey, Sequence[int]],
    *,
    result_object: str,
    metrics: Sequence[str],
    fields: Sequence[str],
    group_by: Sequence[str],
) -> list[RawJson]:
    """Result objects of a usage bucket, encoded: every grouping field, null unless
    grouped by, metrics as integers."""
    template = (
        '{"object":' + wire.encode(result_object)
        + "".join(f',"{m}":%d' for m in metrics)
        + "".join(f',"{f}":%s' if f in group_by else f',"{f}":null' for f in fields)
        + "}"
    )  # fmt: skip
    order = [group_by.index(f) for f in fields if f in group_by]
    if order == list(range(len(group_by))):
        return [RawJson(template % (*values, *_encoded_key(key))) for key, values in groups.items()]
    out: list[RawJson] = []
    for key, values in groups.items():
        encoded = _encoded_key(key)
        out.append(RawJson(template % (*values, *[encoded[i] for i in order])))
    return out


def cost_results(
    groups: Mapping[GroupKey, tuple[int, int | None, str | None]],
    *,
    bucket_start: int,
    group_by: Sequence[str],
    amounts: CostAmounts,
) -> list[RawJson]:
    """`organization.costs.result` objects, encoded; `amounts` says which values go as
    strings."""
    positions = {f: group_by.index(f) if f in group_by else -1 for f in COST_FIELDS}
    shift = bucket_start // DAY
    out: list[RawJson] = []
    for index, (key, (micro, quantity, unit)) in enumerate(groups.items()):
        as_string = amounts == "always" or (
            amounts == "sometimes" and (index + shift) % STRING_EVERY == 0
        )
        value = wire.encode(decimal_string(micro)) if as_string else repr(micro / MICRO)
        encoded = _encoded_key(key)
        line, project, api_key = (
            "null" if (i := positions[f]) < 0 else encoded[i] for f in COST_FIELDS
        )
        out.append(
            RawJson(
                '{"object":"organization.costs.result","amount":{"value":'
                f'{value},"currency":"usd"}},"line_item":{line},"project_id":{project},'
                f'"api_key_id":{api_key},"quantity":{_value(quantity)},'
                f'"quantity_unit":{_value(unit)}}}'
            )
        )
    return out


COST_FIELDS = ("line_item", "project_id", "api_key_id")


# Encoded grouping values by group key: ids recur in every bucket and every poll.
_ENCODED_KEYS: dict[GroupKey, tuple[str, ...]] = {}
_MAX_ENCODED_KEYS = 1_000_000


def _encoded_key(key: GroupKey) -> tuple[str, ...]:
    found = _ENCODED_KEYS.get(key)
    if found is None:
        if len(_ENCODED_KEYS) >= _MAX_ENCODED_KEYS:
            _ENCODED_KEYS.clear()
        found = _ENCODED_KEYS[key] = tuple([_value(v) for v in key])
    return found


def _value(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return encode_basestring(value)  # what json.dumps(ensure_ascii=False) does, in C
    return wire.encode(value)


def decimal_string(micro: int) -> str:
    """Micro-dollars as the decimal string the API sometimes sends: "12.50", "0.000123"."""
    sign = "-" if micro < 0 else ""
    whole, fraction = divmod(abs(micro), MICRO)
    digits = f"{fraction:06d}".rstrip("0")
    return f"{sign}{whole}.{digits.ljust(2, '0')}"


def _all(query: MultiMapping[str], name: str) -> list[str]:
    return query.getall(name, []) + query.getall(f"{name}[]", [])


def _integer(raw: str, param: str) -> int:
    if not _INTEGER.fullmatch(raw):
        raise ApiError(
            400,
            f"Invalid type for '{param}': expected an integer, but got a string instead.",
            param=param,
            code="invalid_type",
        )
    return int(raw)
