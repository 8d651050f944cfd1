"""What a request would be answered normally, in a form faults can bend.

A list endpoint answers a `Listing` (how to fetch any page), so a fault can
ask for the first page or a bigger one; other endpoints answer a JSON object.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from exporter.simulator import wire
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


Reply = Listing | JsonObject


def body_of(reply: Reply) -> JsonObject:
    return reply.page() if isinstance(reply, Listing) else reply


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
