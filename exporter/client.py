"""The OpenAI Admin API client: paginate, retry, parse, classify failures.

One ``AdminApiClient`` serves one refresh with the key read for that refresh; the
``ClientSession`` under it lives as long as the app, so connections are reused.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar
from urllib.parse import quote

import aiohttp
from pydantic import SecretStr, ValidationError

from exporter.api_models import (
    ApiErrorBody,
    ApiProject,
    ApiProjectKey,
    ProjectKeyPage,
    ProjectPage,
)
from exporter.errors import Endpoint, UpstreamError, reason_for_status
from exporter.health import ExporterHealth
from exporter.logs import redact
from exporter.retry import RetryPolicy, is_retryable_status

log = logging.getLogger(__name__)

PAGE_LIMIT = 100  # the API's maximum: fewest requests per listing
MAX_BODY_BYTES = 32 * 1024 * 1024  # a full page is ~100 KB; far larger is not a page
MAX_MESSAGE_CHARS = 300

PageT = TypeVar("PageT", ProjectPage, ProjectKeyPage)
Sleep = Callable[[float], Awaitable[None]]


def sanitize_message(text: str) -> str:
    """The API's own error text, shortened and with anything key-like blanked out."""
    return redact(text.strip())[:MAX_MESSAGE_CHARS]


class AdminApiClient:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        admin_key: SecretStr,
        *,
        health: ExporterHealth,
        retry: RetryPolicy,
        request_timeout: float,
        max_pages: int = 1000,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self._session = session
        self._base_url = base_url
        self._admin_key = admin_key
        self._health = health
        self._retry = retry
        self._timeout = aiohttp.ClientTimeout(total=request_timeout)
        self._max_pages = max_pages
        self._sleep = sleep
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not security

    async def project_pages(self, include_archived: bool) -> AsyncIterator[tuple[ApiProject, ...]]:
        """Every project, a page at a time, so key listings can start early."""
        params = {"limit": str(PAGE_LIMIT)}
        if include_archived:
            params["include_archived"] = "true"
        async for page in self._paginate("/organization/projects", params, ProjectPage, "projects"):
            yield page.data

    async def project_keys(self, project_id: str) -> list[ApiProjectKey]:
        """Every enabled key of a project, whatever its owner's access."""
        params = {"limit": str(PAGE_LIMIT), "owner_project_access": "any"}
        keys: list[ApiProjectKey] = []
        try:
            path = f"/organization/projects/{_path_segment(project_id)}/api_keys"
            async for page in self._paginate(path, params, ProjectKeyPage, "api_keys"):
                keys.extend(page.data)
        except UpstreamError as error:
            error.project_id = project_id
            raise
        return keys

    async def _paginate(
        self, path: str, params: dict[str, str], model: type[PageT], endpoint: Endpoint
    ) -> AsyncIterator[PageT]:
        seen_cursors: set[str] = set()
        after: str | None = None
        for _ in range(self._max_pages):
            query = dict(params) if after is None else {**params, "after": after}
            page = await self._get_page(path, query, model, endpoint)
            if len(page.data) > PAGE_LIMIT:
                raise UpstreamError(
                    "bad_response",
                    f"a page held {len(page.data)} items, more than the {PAGE_LIMIT} asked for",
                    endpoint=endpoint,
                )
            yield page
            if not page.has_more:
                return
            cursor = page.last_id or (page.data[-1].id if page.data else None)
            if cursor is None:
                raise UpstreamError(
                    "bad_response",
                    "has_more is true but the page gives no cursor",
                    endpoint=endpoint,
                )
            if cursor in seen_cursors:
                raise UpstreamError(
                    "bad_response", "the pagination cursor repeated; stopped", endpoint=endpoint
                )
            seen_cursors.add(cursor)
            after = cursor
        raise UpstreamError(
            "bad_response", f"more than {self._max_pages} pages; stopped", endpoint=endpoint
        )

    async def _get_page(
        self, path: str, query: dict[str, str], model: type[PageT], endpoint: Endpoint
    ) -> PageT:
        retry_number = 0
        while True:
            try:
                return await self._request_once(path, query, model, endpoint)
            except _Retryable as retryable:
                if retry_number >= self._retry.max_retries:
                    raise retryable.error from None
                delay = self._retry.delay(retry_number, retryable.headers, time.time(), self._rng)
                log.debug("retrying %s in %.2fs after %s", endpoint, delay, retryable.error.reason)
                retry_number += 1
                await self._sleep(delay)

    async def _request_once(
        self, path: str, query: dict[str, str], model: type[PageT], endpoint: Endpoint
    ) -> PageT:
        headers = {
            "Authorization": f"Bearer {self._admin_key.get_secret_value()}",
            "Accept": "application/json",
        }
        code = "error"
        try:
            # No redirects: the Admin API never sends one, and following it would carry
            # the admin key wherever a proxy or a misconfigured base URL points.
            async with self._session.get(
                self._base_url + path,
                params=query,
                headers=headers,
                timeout=self._timeout,
                allow_redirects=False,
            ) as response:
                code = str(response.status)
                body = await _read_limited(response, endpoint)
                if response.status != 200:
                    raise _status_error(response.status, body, endpoint, dict(response.headers))
        except TimeoutError:
            raise _Retryable(
                UpstreamError("timeout", "request timed out", endpoint=endpoint), {}
            ) from None
        except aiohttp.ClientError as error:
            raise _Retryable(
                UpstreamError("network", type(error).__name__, endpoint=endpoint), {}
            ) from None
        finally:
            self._health.api_requests.labels(endpoint=endpoint, code=code).inc()
        return _parse(body, model, endpoint)


def _path_segment(project_id: str) -> str:
    """The id as one path segment: an id from the API must not steer the admin key to
    another URL (``../``, ``?``, ``#``)."""
    if project_id in (".", ".."):
        raise UpstreamError("bad_response", "a project id that is not a name", endpoint="api_keys")
    return quote(project_id, safe="")


class _Retryable(Exception):
    def __init__(self, error: UpstreamError, headers: dict[str, str]) -> None:
        super().__init__(str(error))
        self.error = error
        self.headers = {name.lower(): value for name, value in headers.items()}


async def _read_limited(response: aiohttp.ClientResponse, endpoint: Endpoint) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(65536):
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise UpstreamError(
                "bad_response", f"response larger than {MAX_BODY_BYTES} bytes", endpoint=endpoint
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _status_error(
    status: int, body: bytes, endpoint: Endpoint, headers: dict[str, str]
) -> Exception:
    message = _error_message(body)
    if status in (401, 403):
        message = (
            "the admin key was refused: an admin key (sk-admin-...) with read access to "
            f"Organization Administration (api.management.read) is needed. The API said: {message}"
        )
    error = UpstreamError(reason_for_status(status), message, endpoint=endpoint, status=status)
    if is_retryable_status(status):
        return _Retryable(error, headers)
    return error


def _error_message(body: bytes) -> str:
    try:
        return sanitize_message(ApiErrorBody.model_validate_json(body).error.message)
    except ValidationError:
        return "no error message"


def _parse(body: bytes, model: type[PageT], endpoint: Endpoint) -> PageT:
    try:
        return model.model_validate_json(body)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise UpstreamError(
            "bad_response",
            f"unexpected response ({error.error_count()} problems; "
            f"first at {where}: {first['msg']})",
            endpoint=endpoint,
        ) from None
