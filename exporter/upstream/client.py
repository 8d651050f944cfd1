"""The OpenAI Admin API client: one request with its retries, parsed, failures classified.

One ``AdminApiClient`` serves one refresh with the key read for that refresh; the
``ClientSession`` under it lives as long as the app, so connections are reused. It
knows nothing of metrics: every request it sends is reported to ``observe``
(endpoint, HTTP status or ``error``), and the caller decides what to count.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Sequence
from typing import TypeVar

import aiohttp
from pydantic import BaseModel, SecretStr, ValidationError
from yarl import URL

from exporter.clock import Clocks
from exporter.logs import redact
from exporter.upstream.errors import UpstreamError, reason_for_status
from exporter.upstream.models import ApiErrorBody
from exporter.upstream.retry import RetryPolicy, is_retryable_status

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 32 * 1024 * 1024  # a full page is ~100 KB; far larger is not a page
# A page of usage or cost buckets holds one result per series and bucket: ~30 MB for a
# busy hour of 10,000 active keys on 3 models (docs/performance.md), so far more room.
MAX_BUCKET_BODY_BYTES = 512 * 1024 * 1024
MAX_MESSAGE_CHARS = 300
DEFAULT_MAX_PAGES = 1000

ModelT = TypeVar("ModelT", bound=BaseModel)
# Query parameters as pairs, so a parameter can repeat (group_by=a&group_by=b).
Query = Sequence[tuple[str, str]]
RequestObserver = Callable[[str, str], None]  # (endpoint, HTTP status or "error")


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
        observe: RequestObserver,
        retry: RetryPolicy,
        request_timeout: float,
        max_pages: int = DEFAULT_MAX_PAGES,
        clocks: Clocks | None = None,
        rng: random.Random | None = None,
        slots: asyncio.Semaphore | None = None,
        proxy: URL | None = None,
        proxy_auth: aiohttp.BasicAuth | None = None,
    ) -> None:
        self._session = session
        # Shared by every organization's clients (upstream.shared); held per request,
        # never across a retry's wait.
        self._slots: contextlib.AbstractAsyncContextManager[object] = (
            slots if slots is not None else contextlib.nullcontext()
        )
        self._proxy = proxy
        self._proxy_auth = proxy_auth
        self._base_url = base_url
        self._admin_key = admin_key
        self._observe = observe
        self._retry = retry
        self._timeout = aiohttp.ClientTimeout(total=request_timeout)
        self.max_pages = max_pages  # bound of one listing, read by the lister
        self._clocks = clocks or Clocks()
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not security

    def holds_key_redacted_as(self, redacted_value: str) -> bool:
        """Whether the key in use is the one the API shows as ``redacted_value``
        (``sk-admin...def``: the visible prefix and suffix). Says only yes or no."""
        prefix, dots, suffix = redacted_value.partition("...")
        if not dots or not prefix or not suffix:
            return False
        key = self._admin_key.get_secret_value()
        return (
            len(key) > len(prefix) + len(suffix) and key.startswith(prefix) and key.endswith(suffix)
        )

    async def get(
        self,
        path: str,
        query: Query,
        model: type[ModelT],
        *,
        endpoint: str,
        permission: str,
        max_body: int = MAX_BODY_BYTES,
    ) -> ModelT:
        """``GET path?query`` parsed as ``model``, retried as the official SDK retries.

        ``permission`` names what the key needs here, for the line a 401/403 logs.
        """
        retry_number = 0
        while True:
            try:
                return await self._request_once(path, query, model, endpoint, permission, max_body)
            except _Retryable as retryable:
                if retry_number >= self._retry.max_retries:
                    raise retryable.error from None
                delay = self._retry.delay(
                    retry_number, retryable.headers, self._clocks.wall(), self._rng
                )
                log.debug("retrying %s in %.2fs after %s", endpoint, delay, retryable.error.reason)
                retry_number += 1
                await self._clocks.sleep(delay)

    async def _request_once(
        self,
        path: str,
        query: Query,
        model: type[ModelT],
        endpoint: str,
        permission: str,
        max_body: int,
    ) -> ModelT:
        headers = {
            "Authorization": f"Bearer {self._admin_key.get_secret_value()}",
            "Accept": "application/json",
        }
        code = "error"
        try:
            # No redirects: the Admin API never sends one, and following it would carry
            # the admin key wherever a proxy or a misconfigured base URL points.
            async with (
                self._slots,
                self._session.get(
                    self._base_url + path,
                    params=list(query),
                    headers=headers,
                    timeout=self._timeout,
                    allow_redirects=False,
                    proxy=self._proxy,
                    proxy_auth=self._proxy_auth,
                ) as response,
            ):
                code = str(response.status)
                body = await _read_limited(response, endpoint, max_body)
                if response.status != 200:
                    raise _status_error(
                        response.status, body, endpoint, permission, dict(response.headers)
                    )
        except TimeoutError:
            raise _Retryable(
                UpstreamError("timeout", "request timed out", endpoint=endpoint), {}
            ) from None
        except aiohttp.ClientError as error:
            raise _Retryable(
                UpstreamError("network", type(error).__name__, endpoint=endpoint), {}
            ) from None
        finally:
            self._observe(endpoint, code)
        return _parse(body, model, endpoint)


class _Retryable(Exception):
    def __init__(self, error: UpstreamError, headers: dict[str, str]) -> None:
        super().__init__(str(error))
        self.error = error
        self.headers = {name.lower(): value for name, value in headers.items()}


async def _read_limited(response: aiohttp.ClientResponse, endpoint: str, max_body: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(65536):
        size += len(chunk)
        if size > max_body:
            raise UpstreamError(
                "bad_response", f"response larger than {max_body} bytes", endpoint=endpoint
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _status_error(
    status: int, body: bytes, endpoint: str, permission: str, headers: dict[str, str]
) -> Exception:
    message = _error_message(body)
    if status in (401, 403):
        message = (
            f"the admin key was refused: an admin key (sk-admin-...) with {permission} is "
            f"needed. The API said: {message}"
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


def _parse(body: bytes, model: type[ModelT], endpoint: str) -> ModelT:
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
