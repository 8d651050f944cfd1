"""The Admin API's error body, `{"error": {"message", "type", "param", "code"}}`, by status."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class ApiError(Exception):
    """An error answer; raised by request parsing, turned into a response by the app."""

    status: int
    message: str
    type: str = "invalid_request_error"
    param: str | None = None
    code: str | None = None
    retry_after: str | None = None
    retry_after_ms: int | None = None

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }

    def headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        if self.retry_after is not None:
            headers["Retry-After"] = self.retry_after
        if self.retry_after_ms is not None:
            headers["retry-after-ms"] = str(self.retry_after_ms)
        return headers


# (message, type, code) the real API uses for each status, as seen in its
# documentation and in user reports; anything unlisted falls back by class.
_BY_STATUS: dict[int, tuple[str, str, str | None]] = {
    400: ("Bad request.", "invalid_request_error", None),
    401: ("Incorrect API key provided.", "invalid_request_error", "invalid_api_key"),
    403: (
        "You have insufficient permissions for this operation. "
        "Missing scopes: api.management.read.",
        "invalid_request_error",
        None,
    ),
    404: ("Not found.", "invalid_request_error", None),
    408: ("Request timed out.", "invalid_request_error", None),
    409: ("The request conflicted with another change; retry it.", "invalid_request_error", None),
    429: (
        "Rate limit reached for requests. Please try again later.",
        "requests",
        "rate_limit_exceeded",
    ),
    500: (
        "The server had an error while processing your request. Sorry about that!",
        "server_error",
        None,
    ),
    502: ("Bad gateway.", "server_error", None),
    503: ("The server is overloaded or not ready yet.", "server_error", None),
    504: ("Gateway timeout.", "server_error", None),
}


def error_for_status(
    status: int,
    message: str = "",
    *,
    retry_after: str | None = None,
    retry_after_ms: int | None = None,
) -> ApiError:
    """The error the real API answers with `status`; an empty message means its usual one."""
    default_message, error_type, code = _BY_STATUS.get(
        status,
        ("Request failed.", "server_error" if status >= 500 else "invalid_request_error", None),
    )
    return ApiError(
        status=status,
        message=message or default_message,
        type=error_type,
        code=code,
        retry_after=retry_after,
        retry_after_ms=retry_after_ms,
    )


def missing_key() -> ApiError:
    return ApiError(
        401,
        "You didn't provide an API key. You need to provide your API key in an Authorization "
        "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
    )


def not_admin_key() -> ApiError:
    # Never echo the key, not even redacted: the exporter's canary tests rely on it.
    return ApiError(
        401,
        "Incorrect API key provided. Organization administration endpoints need an admin key "
        "(sk-admin-...).",
        code="invalid_api_key",
    )


def rejected_admin_key() -> ApiError:
    return ApiError(401, "Incorrect API key provided.", code="invalid_api_key")


def project_not_found(project_id: str) -> ApiError:
    return ApiError(404, f"No such project: '{project_id}'.", param="project_id")


def project_archived(project_id: str) -> ApiError:
    # The spec documents a 400 for an archived project; its message is not published.
    return ApiError(400, f"Project '{project_id}' is archived.", param="project_id")


def no_spend_limit(project_id: str | None) -> ApiError:
    # The spec does not say what the API answers without a limit: a 404 is our assumption.
    where = "this organization" if project_id is None else f"project '{project_id}'"
    return ApiError(404, f"No spend limit is set for {where}.", code="not_found")


def audit_logging_disabled() -> ApiError:
    # No public evidence of the real answer: a 403 is our choice (docs/simulator.md).
    return ApiError(403, "Audit logging is not enabled for this organization.")


def invalid_url(method: str, path: str, status: int) -> ApiError:
    if status == 405:
        return ApiError(405, f"Invalid method for URL ({method} {path}).")
    return ApiError(status, f"Invalid URL ({method} {path}).")
