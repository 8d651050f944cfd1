"""The JSON the Admin API sends: objects as its schemas define them, and list envelopes."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from exporter.simulator.audit import SimAuditActor, SimAuditEvent
from exporter.simulator.billing import SimRateLimit, SimSpendAlert, SimSpendLimit
from exporter.simulator.organization import (
    SimAdminKey,
    SimApiKey,
    SimCertificate,
    SimInvite,
    SimMember,
    SimProject,
    SimServiceAccount,
)

JsonObject = dict[str, Any]


def project(p: SimProject) -> JsonObject:
    return {
        "id": p.id,
        "object": "organization.project",
        "name": p.name,
        "created_at": p.created_at,
        "archived_at": p.archived_at,
        "status": p.status,
    }


def api_key(k: SimApiKey) -> JsonObject:
    owner = k.owner
    owner_json: JsonObject
    if isinstance(owner, SimServiceAccount):
        owner_json = {
            "type": "service_account",
            "service_account": {
                "id": owner.id,
                "name": owner.name,
                "created_at": owner.created_at,
                "role": owner.role,
            },
        }
    else:
        owner_json = {
            "type": "user",
            "user": {
                "id": owner.id,
                "email": owner.email,
                "name": owner.name,
                "created_at": owner.created_at,
                "role": owner.role,
            },
        }
    return {
        "object": "organization.project.api_key",
        "redacted_value": k.redacted_value,
        "name": k.name,
        "created_at": k.created_at,
        "last_used_at": k.last_used_at,
        "id": k.id,
        "owner_project_access": k.owner_project_access,
        "owner": owner_json,
    }


def admin_api_key(k: SimAdminKey) -> JsonObject:
    """`organization.admin_api_key`: never the full value, only `sk-admin...` + its tail."""
    owner = k.owner
    return {
        "object": "organization.admin_api_key",
        "id": k.id,
        "name": k.name,
        "redacted_value": k.redacted_value,
        "created_at": k.created_at,
        "expires_at": k.expires_at,
        "last_used_at": k.last_used_at,
        "owner": {
            "type": owner.type,
            "object": (
                "organization.service_account"
                if owner.type == "service_account"
                else "organization.user"
            ),
            "id": owner.id,
            "name": owner.name,
            "created_at": owner.created_at,
            "role": owner.role,
        },
    }


def user(m: SimMember) -> JsonObject:
    """`organization.user`: what the spec requires plus what is cheap to know."""
    return {
        "object": "organization.user",
        "id": m.id,
        "name": m.name,
        "email": m.email,
        "role": m.role,
        "added_at": m.added_at,
        "created": m.created_at,
        "is_default": False,
        "is_service_account": False,
        "is_scim_managed": False,
        "api_key_last_used_at": m.api_key_last_used_at,
        "user": {
            "object": "user",
            "id": m.id,
            "email": m.email,
            "name": m.name,
            "picture": None,
            "enabled": True,
            "banned": False,
            "banned_at": None,
        },
    }


def invite(i: SimInvite) -> JsonObject:
    return {
        "object": "organization.invite",
        "id": i.id,
        "email": i.email,
        "role": i.role,
        "status": i.status,
        "created_at": i.created_at,
        "expires_at": i.expires_at,
        "accepted_at": i.accepted_at,
        "projects": [{"id": p.id, "role": p.role} for p in i.projects],
    }


def certificate(c: SimCertificate) -> JsonObject:
    """`organization.certificate`, the listing's shape (the upload answer differs)."""
    return {
        "object": "organization.certificate",
        "id": c.id,
        "name": c.name,
        "created_at": c.created_at,
        "active": c.active,
        "certificate_details": {"valid_at": c.valid_at, "expires_at": c.expires_at},
    }


def service_account(a: SimServiceAccount) -> JsonObject:
    return {
        "object": "organization.project.service_account",
        "id": a.id,
        "name": a.name,
        "role": a.role,
        "created_at": a.created_at,
    }


# What a browser session's `user_agent` says; the simulator has no browsers of its own.
SESSION_USER_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36"
)


def audit_event(e: SimAuditEvent) -> JsonObject:
    """`AuditLog`: the detail object sits under a key named after the event's type."""
    body: JsonObject = {"id": e.id, "type": e.type, "effective_at": e.effective_at}
    if e.project_id is not None:
        body["project"] = {"id": e.project_id}
        if e.project_name is not None:
            body["project"]["name"] = e.project_name
    body["actor"] = None if e.actor is None else audit_actor(e.actor)
    body[e.type] = dict(e.details)
    return body


def audit_actor(a: SimAuditActor) -> JsonObject:
    """`AuditLogActor`; fields the actor lacks are left out (the spec has them as strings)."""
    user = _present({"id": a.user_id, "email": a.user_email})
    if a.kind == "session":
        session = _present({"ip_address": a.ip_address, "user_agent": SESSION_USER_AGENT})
        return {"type": "session", "session": {"user": user, **session}}
    if a.kind == "user_api_key":
        key = _present({"id": a.api_key_id, "type": "user"})
        return {"type": "api_key", "api_key": {**key, "user": user}}
    key = _present({"id": a.api_key_id, "type": "service_account"})
    account = _present({"id": a.service_account_id})
    return {"type": "api_key", "api_key": {**key, "service_account": account}}


def _present(fields: dict[str, str | None]) -> JsonObject:
    return {name: value for name, value in fields.items() if value is not None}


def bucket(start: int, end: int, results: Sequence[JsonObject | RawJson]) -> JsonObject:
    return {"object": "bucket", "start_time": start, "end_time": end, "results": list(results)}


def bucket_page(buckets: Sequence[JsonObject], next_page: str | None) -> JsonObject:
    """The usage and costs envelope: `has_more` exactly when there is a `next_page`."""
    return {
        "object": "page",
        "data": list(buckets),
        "has_more": next_page is not None,
        "next_page": next_page,
    }


def spend_limit(limit: SimSpendLimit, *, project: bool) -> JsonObject:
    return {
        "object": "project.spend_limit" if project else "organization.spend_limit",
        "threshold_amount": limit.threshold_amount,
        "currency": "USD",
        "interval": "month",
        "enforcement": {"status": limit.status},
    }


def spend_alert(alert: SimSpendAlert, *, project: bool) -> JsonObject:
    return {
        "id": alert.id,
        "object": "project.spend_alert" if project else "organization.spend_alert",
        "threshold_amount": alert.threshold_amount,
        "currency": "USD",
        "interval": "month",
        "notification_channel": {
            "type": "email",
            "recipients": list(alert.recipients),
            "subject_prefix": alert.subject_prefix,
        },
    }


def rate_limit(limit: SimRateLimit) -> JsonObject:
    """`project.rate_limit`; the optional maxima only for the models that have them."""
    body: JsonObject = {
        "object": "project.rate_limit",
        "id": limit.id,
        "model": limit.model,
        "max_requests_per_1_minute": limit.max_requests_per_1_minute,
        "max_tokens_per_1_minute": limit.max_tokens_per_1_minute,
    }
    for name in (
        "max_images_per_1_minute",
        "max_audio_megabytes_per_1_minute",
        "max_requests_per_1_day",
        "batch_1_day_max_input_tokens",
    ):
        value = getattr(limit, name)
        if value is not None:
            body[name] = value
    return body


def envelope(data: Sequence[JsonObject], *, has_more: bool) -> JsonObject:
    return {
        "object": "list",
        "data": list(data),
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": has_more,
    }


class RawJson(str):
    """An already-encoded JSON value (a usage or costs result) that `dumps` splices in as
    is: a page of 100,000 results is built as text, not as 100,000 dicts."""

    __slots__ = ()


def encode(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def dumps(body: object) -> bytes:
    # UTF-8 as is, not \u escapes: the exporter must decode real UTF-8 bodies.
    if isinstance(body, dict) and body.get("object") == "page":
        return _dumps_page(body).encode("utf-8")
    return encode(body).encode("utf-8")


def _dumps_page(body: JsonObject) -> str:
    data = body.get("data")
    if not isinstance(data, list):
        return encode(body)
    buckets: list[str] = []
    for item in data:
        results = item.get("results") if isinstance(item, dict) else None
        if isinstance(results, list) and any(isinstance(r, RawJson) for r in results):
            head = encode({k: v for k, v in item.items() if k != "results"})[:-1]
            joined = ",".join(r if isinstance(r, RawJson) else encode(r) for r in results)
            buckets.append(f'{head}{"," if len(head) > 1 else ""}"results":[{joined}]}}')
        else:
            buckets.append(encode(item))
    rest = encode({k: v for k, v in body.items() if k != "data"})[:-1]
    return f'{rest}{"," if len(rest) > 1 else ""}"data":[{",".join(buckets)}]}}'


def json_text(body: object) -> str:
    """What `dumps` sends, as text."""
    return dumps(body).decode("utf-8")
