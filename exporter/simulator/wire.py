"""The JSON the Admin API sends: objects as its schemas define them, and list envelopes."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from exporter.simulator.organization import SimApiKey, SimProject, SimServiceAccount

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


def envelope(data: Sequence[JsonObject], *, has_more: bool) -> JsonObject:
    return {
        "object": "list",
        "data": list(data),
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": has_more,
    }


def dumps(body: object) -> bytes:
    # UTF-8 as is, not \u escapes: the exporter must decode real UTF-8 bodies.
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
