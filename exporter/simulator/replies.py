"""What a request would be answered normally, in a form faults can bend.

A list endpoint answers a `Listing` (how to fetch any page), a usage or costs
endpoint a `BucketListing`, so a fault can ask for the first page or a bigger
one; other endpoints answer a JSON object.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from exporter.simulator import wire
from exporter.simulator.buckets import BucketPager
from exporter.simulator.wire import JsonObject

# (after, limit) -> (items, has_more); raises ApiError for an unknown cursor.
Pager = Callable[[str | None, int], tuple[list[JsonObject], bool]]


@dataclass(frozen=True, slots=True)
class Listing:
    pager: Pager
    after: str | None
    limit: int

    def page(self) -> JsonObject:
        items, has_more = self.pager(self.after, self.limit)
        return wire.envelope(items, has_more=has_more)


@dataclass(frozen=True, slots=True)
class BucketListing:
    """A page-token listing: `start`/`offset` from the request's `page`, or the first bucket."""

    pager: BucketPager
    first: int  # the query's first bucket
    start: int
    offset: int
    limit: int
    page_token: str | None
    token: Callable[[int, int], str]  # (bucket start, offset) -> a page token

    def page(self) -> JsonObject:
        buckets, next_page = self.pager(self.start, self.offset, self.limit, True)
        return wire.bucket_page(buckets, next_page)


Reply = Listing | BucketListing | JsonObject


def body_of(reply: Reply) -> JsonObject:
    return reply if isinstance(reply, dict) else reply.page()


def json_response(
    body: object, *, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=wire.dumps(body),
        status=status,
        headers=headers,
        content_type="application/json",
        charset="utf-8",
    )
