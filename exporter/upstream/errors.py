"""Upstream failures, each under one fixed reason that becomes a metric label."""

from __future__ import annotations

from typing import Literal, get_args

ErrorReason = Literal[
    "auth",
    "rate_limited",
    "timeout",
    "server_error",
    "client_error",
    "network",
    "bad_response",
]
ERROR_REASONS: tuple[ErrorReason, ...] = get_args(ErrorReason)

# An endpoint's name, as the resource modules declare it and the
# openai_exporter_api_requests_total{endpoint} label shows it.
Endpoint = str


class UpstreamError(Exception):
    """A listing that failed for good (after its retries).

    The message is built by the exporter from status codes and the API's own
    error text; it never contains the admin key.
    """

    def __init__(
        self,
        reason: ErrorReason,
        message: str,
        *,
        endpoint: Endpoint,
        status: int | None = None,
        project_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.reason: ErrorReason = reason
        self.message = message
        self.endpoint: Endpoint = endpoint
        self.status = status
        self.project_id = project_id

    def __str__(self) -> str:
        where = (
            self.endpoint if self.project_id is None else f"{self.endpoint} of {self.project_id}"
        )
        status = "" if self.status is None else f" (HTTP {self.status})"
        return f"{self.reason}: listing {where} failed{status}: {self.message}"


def reason_for_status(status: int) -> ErrorReason:
    """The fixed reason for an HTTP error status."""
    if status in (401, 403):
        return "auth"
    if status == 429:
        return "rate_limited"
    if status == 408:
        return "timeout"
    if status >= 500:
        return "server_error"
    return "client_error"
