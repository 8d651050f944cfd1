"""Typed models of the Admin API responses, following the OpenAPI spec.

Unknown fields are ignored (the API grows); required fields and their types are
enforced, so a page of the wrong shape fails validation instead of crashing later.
"""

from __future__ import annotations

from typing import Annotated, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

ItemT = TypeVar("ItemT")

# Unix seconds up to 9999-12-31T23:59:59Z. Anything else is not a time: a value past
# float64's range would even make the whole exposition unparsable for Prometheus.
Timestamp = Annotated[int, Field(ge=0, le=253_402_300_799)]


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True, frozen=True)


class ApiProject(_Wire):
    id: str = Field(min_length=1)
    object: Literal["organization.project"]
    created_at: Timestamp
    name: str | None = None
    status: str | None = None
    archived_at: Timestamp | None = None


class ApiKeyOwnerUser(_Wire):
    id: str
    name: str
    email: str | None = None
    role: str | None = None


class ApiKeyOwnerServiceAccount(_Wire):
    id: str
    name: str
    role: str | None = None


class ApiKeyOwner(_Wire):
    type: Literal["user", "service_account"]
    user: ApiKeyOwnerUser | None = None
    service_account: ApiKeyOwnerServiceAccount | None = None


class ApiProjectKey(_Wire):
    id: str = Field(min_length=1)
    object: Literal["organization.project.api_key"]
    name: str
    created_at: Timestamp
    last_used_at: Timestamp | None
    owner_project_access: Literal["active", "inactive"]
    owner: ApiKeyOwner


class Page(_Wire, Generic[ItemT]):
    """The list envelope; only ``object``, ``data`` and ``has_more`` are required."""

    object: Literal["list"]
    data: tuple[ItemT, ...]
    has_more: bool
    first_id: str | None = None
    last_id: str | None = None


ProjectPage = Page[ApiProject]
ProjectKeyPage = Page[ApiProjectKey]


class ApiErrorDetail(BaseModel):
    model_config = ConfigDict(extra="ignore")
    message: str = ""
    type: str | None = None
    code: str | None = None


class ApiErrorBody(BaseModel):
    model_config = ConfigDict(extra="ignore")
    error: ApiErrorDetail
