"""The Admin API's envelopes and shared field types, following the OpenAPI spec.

Resource models live with their collectors (``exporter.collectors.*``); this module
holds what every listing shares: the two paging envelopes, the error body and the
timestamp type. Unknown fields are ignored (the API grows); required fields and their
types are enforced, so a page of the wrong shape fails validation instead of crashing
later.
"""

from __future__ import annotations

from typing import Annotated, Generic, Literal, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field

ItemT = TypeVar("ItemT")

# Unix seconds up to 9999-12-31T23:59:59Z. Anything else is not a time: a value past
# float64's range would even make the whole exposition unparsable for Prometheus.
Timestamp = Annotated[int, Field(ge=0, le=253_402_300_799)]


class Wire(BaseModel):
    """Base of every response model: strict types, unknown fields ignored, frozen."""

    model_config = ConfigDict(extra="ignore", strict=True, frozen=True)


class Identified(Protocol):
    """An item of a cursor listing: its id is the cursor of the next page."""

    @property
    def id(self) -> str: ...


class CursorPage(Wire, Generic[ItemT]):
    """``after`` / ``last_id`` / ``has_more`` paging (every list of the Admin API).

    Only ``object``, ``data`` and ``has_more`` are required.
    """

    object: Literal["list"]
    data: tuple[ItemT, ...]
    has_more: bool
    first_id: str | None = None
    last_id: str | None = None


class TokenPage(Wire, Generic[ItemT]):
    """``page`` / ``next_page`` paging (the usage and costs endpoints)."""

    object: Literal["page"]
    data: tuple[ItemT, ...]
    has_more: bool
    next_page: str | None = None


class ApiErrorDetail(BaseModel):
    model_config = ConfigDict(extra="ignore")
    message: str = ""
    type: str | None = None
    code: str | None = None


class ApiErrorBody(BaseModel):
    model_config = ConfigDict(extra="ignore")
    error: ApiErrorDetail
