"""The generic lister: every page of a listing, for the API's two paging schemes.

A resource module declares its endpoint once (``CursorEndpoint`` or ``TokenEndpoint``:
name, path, item model, fixed query, the permission it needs); the lister follows the
pages with the client's retries and stops with ``bad_response`` on a page that cannot
be one (more items than asked for, a repeated cursor, more pages than the bound).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar
from urllib.parse import quote

from exporter.upstream.client import (
    MAX_BODY_BYTES,
    MAX_BUCKET_BODY_BYTES,
    AdminApiClient,
    Query,
)
from exporter.upstream.errors import UpstreamError
from exporter.upstream.models import CursorPage, Identified, TokenPage

ItemT = TypeVar("ItemT", bound=Identified)
ItemT_co = TypeVar("ItemT_co", covariant=True)
BucketT = TypeVar("BucketT")

PAGE_LIMIT = 100  # the API's maximum for cursor listings: fewest requests per listing
# What a 401/403 names when an endpoint needs nothing more specific.
ADMIN_READ = "read access to Organization Administration (api.management.read)"


class PageBoundReached(UpstreamError):
    """The listing had more pages than its bound (``has_more`` still true after it).
    A subclass so a caller that reads only the newest pages on purpose (the audit
    log's backfill) can tell this from a page that is wrong."""


@dataclass(frozen=True)
class _Endpoint(Generic[ItemT_co]):
    name: str  # the endpoint label of openai_exporter_api_requests_total
    path: str
    item: type[ItemT_co]
    query: Query = ()
    permission: str = ADMIN_READ  # what a 401/403 line says the key needs
    max_body: ClassVar[int] = MAX_BODY_BYTES  # the largest page the scheme can need
    page_model: type[Any] = field(init=False, repr=False, compare=False)
    envelope: ClassVar[type[Any]]  # the paging scheme's envelope, made concrete per item

    def __post_init__(self) -> None:
        object.__setattr__(self, "page_model", self.envelope[self.item])


@dataclass(frozen=True)
class CursorEndpoint(_Endpoint[ItemT]):
    """A cursor-paged listing (``after`` / ``last_id`` / ``has_more``).

    ``path`` may hold ``{name}`` placeholders, filled by ``list_cursor``'s ``path_args``
    (each quoted into one path segment).
    """

    envelope = CursorPage


@dataclass(frozen=True)
class TokenEndpoint(_Endpoint[BucketT]):
    """A page-token listing (``page`` = the previous ``next_page``: usage and costs)."""

    envelope = TokenPage
    max_body = MAX_BUCKET_BODY_BYTES


def path_of(template: str, path_args: Mapping[str, str], endpoint: str) -> str:
    """The path with each argument as exactly one segment: an id from the API must not
    steer the admin key to another URL (``../``, ``?``, ``#``)."""
    segments: dict[str, str] = {}
    for name, value in path_args.items():
        if value in ("", ".", ".."):
            raise UpstreamError(
                "bad_response", f"an id that is not a name: {value!r}", endpoint=endpoint
            )
        segments[name] = quote(value, safe="")
    return template.format(**segments)


async def list_cursor(
    client: AdminApiClient,
    endpoint: CursorEndpoint[ItemT],
    *,
    path_args: Mapping[str, str] | None = None,
    query: Query = (),
    max_pages: int | None = None,
) -> AsyncIterator[tuple[ItemT, ...]]:
    """Every item, a page at a time (so dependent listings can start early); at most
    ``max_pages`` pages (default ``client.max_pages``), else ``PageBoundReached``."""
    project_id = (path_args or {}).get("project_id")
    try:
        async for page in _cursor_pages(
            client, endpoint, path_args or {}, query, max_pages or client.max_pages
        ):
            yield page
    except UpstreamError as error:
        if project_id is not None:
            error.project_id = project_id
        raise


async def list_all(
    client: AdminApiClient,
    endpoint: CursorEndpoint[ItemT],
    *,
    path_args: Mapping[str, str] | None = None,
    query: Query = (),
) -> list[ItemT]:
    """Every item of a cursor listing, in order."""
    items: list[ItemT] = []
    async for page in list_cursor(client, endpoint, path_args=path_args, query=query):
        items.extend(page)
    return items


async def _cursor_pages(
    client: AdminApiClient,
    endpoint: CursorEndpoint[ItemT],
    path_args: Mapping[str, str],
    query: Query,
    max_pages: int,
) -> AsyncIterator[tuple[ItemT, ...]]:
    def cursor_of(page: CursorPage[ItemT]) -> str | None:
        return page.last_id or (page.data[-1].id if page.data else None)

    scheme = _Scheme("after", "items", "cursor", "pagination cursor")
    path = path_of(endpoint.path, path_args, endpoint.name)
    async for items in _pages(
        client, endpoint, path, PAGE_LIMIT, query, scheme, cursor_of, max_pages
    ):
        yield items


async def list_token_pages(
    client: AdminApiClient,
    endpoint: TokenEndpoint[BucketT],
    *,
    limit: int,
    query: Query = (),
) -> AsyncIterator[tuple[BucketT, ...]]:
    """Every bucket of a page-token listing, a page at a time; ``limit`` counts buckets
    (its maximum depends on the bucket width, so the caller chooses it)."""

    def token_of(page: TokenPage[BucketT]) -> str | None:
        return page.next_page or None

    scheme = _Scheme("page", "buckets", "next_page", "page token")
    async for buckets in _pages(
        client, endpoint, endpoint.path, limit, query, scheme, token_of, client.max_pages
    ):
        yield buckets


@dataclass(frozen=True)
class _Scheme:
    """How a paging scheme names things, for its query and its error messages."""

    parameter: str  # the query parameter that asks for the next page
    items: str  # what a page holds
    field: str  # the field that gives the next page
    position: str  # what repeats when paging goes round in circles


async def _pages(
    client: AdminApiClient,
    endpoint: _Endpoint[Any],
    path: str,
    limit: int,
    query: Query,
    scheme: _Scheme,
    next_of: Callable[[Any], str | None],
    max_pages: int,
) -> AsyncIterator[tuple[Any, ...]]:
    """The page loop both schemes share: at most ``max_pages`` pages of at most
    ``limit`` items, following ``next_of(page)`` until ``has_more`` is false."""
    name = endpoint.name
    base = [("limit", str(limit)), *endpoint.query, *query]
    seen: set[str] = set()
    position: str | None = None
    for _ in range(max_pages):
        params = base if position is None else [*base, (scheme.parameter, position)]
        page = await client.get(
            path,
            params,
            endpoint.page_model,
            endpoint=name,
            permission=endpoint.permission,
            max_body=endpoint.max_body,
        )
        if len(page.data) > limit:
            raise UpstreamError(
                "bad_response",
                f"a page held {len(page.data)} {scheme.items}, more than the {limit} asked for",
                endpoint=name,
            )
        yield page.data
        if not page.has_more:
            return
        position = next_of(page)
        if position is None:
            raise UpstreamError(
                "bad_response",
                f"has_more is true but the page gives no {scheme.field}",
                endpoint=name,
            )
        if position in seen:
            raise UpstreamError(
                "bad_response", f"the {scheme.position} repeated; stopped", endpoint=name
            )
        seen.add(position)
    raise PageBoundReached("bad_response", f"more than {max_pages} pages; stopped", endpoint=name)
