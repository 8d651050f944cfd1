"""Acting out a `Fault` on the wire, on top of the answer the request would get."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Callable
from typing import Any

from aiohttp import web

from exporter.simulator import wire
from exporter.simulator.errors import error_for_status
from exporter.simulator.faults import Endpoint, Fault
from exporter.simulator.replies import BucketListing, Listing, Reply, body_of, json_response
from exporter.simulator.wire import JsonObject

OVERSIZE_FACTOR = 10
MALFORMED_BODY = b'{"object": "list", "data": [{"id": "proj_trunc'


class ConnectionAbortedByFaultError(Exception):
    """Raised after a `reset` fault closed the connection: no response may follow."""


async def act_out(
    fault: Fault,
    request: web.Request,
    endpoint: Endpoint,
    answer: Callable[[], Reply],
) -> web.StreamResponse:
    """The response (or the lack of one) that `fault` makes of this request.

    `answer` computes the normal answer lazily; it may raise ApiError (bad
    parameters, unknown project), which then is the answer, fault or not.
    """
    if fault.kind == "status":
        error = error_for_status(
            fault.status,
            fault.message,
            retry_after=fault.retry_after,
            retry_after_ms=fault.retry_after_ms,
        )
        return json_response(error.body(), status=error.status, headers=error.headers())
    if fault.kind == "reset":
        _reset(request)
    if fault.kind == "slow":
        await asyncio.sleep(fault.delay)
        return json_response(body_of(answer()))
    if fault.kind == "truncated":
        return await _truncated(request, wire.dumps(body_of(answer())))
    if fault.kind == "malformed_json":
        return web.Response(body=MALFORMED_BODY, content_type="application/json")
    if fault.kind == "wrong_shape":
        return json_response(_wrong_shape(body_of(answer()), endpoint))
    reply = answer()
    if isinstance(reply, BucketListing):
        if fault.kind == "repeat_cursor":
            return json_response(_repeated_first_bucket_page(reply))
        return json_response(_oversized_bucket_page(reply))
    if not isinstance(reply, Listing):
        return json_response(reply)  # cursor faults only bend lists
    if fault.kind == "repeat_cursor":
        return json_response(_repeated_first_page(reply))
    return json_response(_oversized(reply))


def _reset(request: web.Request) -> None:
    transport = request.transport
    if transport is not None:
        sock: Any = transport.get_extra_info("socket")
        if sock is not None:
            # Linger 0 makes close() send RST instead of FIN: a reset, not an EOF.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
    raise ConnectionAbortedByFaultError


async def _truncated(request: web.Request, body: bytes) -> web.StreamResponse:
    response = web.StreamResponse(status=200)
    response.content_type = "application/json"
    response.content_length = len(body) + 1024
    await response.prepare(request)
    await response.write(body[: len(body) // 2])
    if request.transport is not None:
        request.transport.close()  # flushes what was written, then FIN
    return response


def _wrong_shape(body: JsonObject, endpoint: Endpoint) -> JsonObject:
    """Valid JSON a schema-following parser must refuse."""
    if body.get("object") == "page":
        # Usage and costs: bucket times as ISO strings instead of unix seconds.
        buckets = body.get("data") or [wire.bucket(0, 0, [])]
        return {
            **body,
            "data": [
                {**b, "start_time": "2024-03-26T00:00:00Z", "end_time": "tomorrow"} for b in buckets
            ],
        }
    if endpoint in _NUMBER_FIELDS:
        # Amounts and maxima as strings with units instead of integers.
        field = _NUMBER_FIELDS[endpoint]
        if "data" not in body:
            return {**body, field: "100.00 USD"}
        items = body["data"] or [{"id": f"{_ID_PREFIXES[endpoint]}wrong_shape"}]
        return {**body, "data": [{**item, field: "100 per minute"} for item in items]}
    if endpoint == "projects":
        # `data` an object keyed by id instead of an array.
        return {**body, "data": {item["id"]: item for item in body.get("data", [])}}
    if endpoint == "audit_logs":
        # Event times as ISO strings instead of unix seconds.
        items = [{**item, "effective_at": "2024-03-26T16:45:33Z"} for item in body["data"]]
        placeholder = {"id": "audit_log-wrong_shape", "type": "login.succeeded"}
        return {**body, "data": items or [{**placeholder, "effective_at": "today"}]}
    if endpoint != "other":
        # Every other listing: timestamps as ISO strings instead of unix seconds.
        items = [
            {**item, "created_at": "2024-03-26T16:45:33Z", "last_used_at": "yesterday"}
            | ({"added_at": "2024-03-26T16:45:33Z"} if "added_at" in item else {})
            for item in body.get("data", [])
        ]
        placeholder = {"id": f"{_ID_PREFIXES[endpoint]}wrong_shape", "created_at": "today"}
        return {**body, "data": items or [placeholder]}
    return {**body, "created_at": "2024-03-26T16:45:33Z"}


# The id prefix of a listing's objects, for the placeholder of an empty wrong-shaped page.
_ID_PREFIXES: dict[Endpoint, str] = {
    "api_keys": "key_",
    "admin_api_keys": "key_",
    "users": "user-",
    "invites": "invite-",
    "certificates": "cert_",
    "service_accounts": "svc_acct_",
    "spend_alerts": "alert_",
    "project_spend_alerts": "alert_",
    "rate_limits": "rl-",
}
# The number a wrong-shaped answer of these endpoints sends as a string.
_NUMBER_FIELDS: dict[Endpoint, str] = {
    "spend_limit": "threshold_amount",
    "project_spend_limit": "threshold_amount",
    "spend_alerts": "threshold_amount",
    "project_spend_alerts": "threshold_amount",
    "rate_limits": "max_requests_per_1_minute",
}


def _repeated_first_page(listing: Listing) -> JsonObject:
    """The first page whatever `after` says, claiming more: following it loops forever."""
    items, _ = listing.pager(None, listing.limit)
    body = wire.envelope(items, has_more=True)
    if body["last_id"] is None:
        body["last_id"] = listing.after
    return body


def _oversized(listing: Listing) -> JsonObject:
    """Ten times `limit` valid items; padded with clones under derived ids if the list is short."""
    wanted = listing.limit * OVERSIZE_FACTOR
    items, has_more = listing.pager(listing.after, wanted)
    if items and len(items) < wanted:
        template = items[-1]
        items = items + [
            {**template, "id": f"{template['id']}_extra{n}"} for n in range(wanted - len(items))
        ]
        has_more = False  # the clones' ids are no cursor the list knows
    return wire.envelope(items, has_more=has_more)


def _repeated_first_bucket_page(listing: BucketListing) -> JsonObject:
    """The first page whatever `page` says, with a `next_page` that leads back to it: the
    request's own token (or one naming the first bucket): following it loops forever."""
    buckets, next_page = listing.pager(listing.first, 0, listing.limit, True)
    token = listing.page_token or next_page or listing.token(listing.first, 0)
    return wire.bucket_page(buckets, token)


def _oversized_bucket_page(listing: BucketListing) -> JsonObject:
    """Ten times `limit` buckets from the page's start, past end_time if need be."""
    buckets, next_page = listing.pager(
        listing.start, listing.offset, listing.limit * OVERSIZE_FACTOR, False
    )
    return wire.bucket_page(buckets, next_page)
