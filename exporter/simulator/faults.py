"""Upstream failures to inject: what can go wrong, and which request it hits.

Pure bookkeeping, no HTTP: `FaultInjector.take` says which fault (if any) the
next request suffers; `fault_responses` acts it out on the wire.
"""

from __future__ import annotations

import random
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Literal, get_args

FaultKind = Literal[
    "status",
    "slow",
    "reset",
    "truncated",
    "malformed_json",
    "wrong_shape",
    "repeat_cursor",
    "oversized_page",
]
# The endpoints a fault can aim at, named like the exporter's `endpoint` labels;
# also the simulator's route names.
ApiEndpoint = Literal[
    "projects",
    "api_keys",
    "admin_api_keys",
    "users",
    "invites",
    "certificates",
    "service_accounts",
    "usage_completions",
    "usage_embeddings",
    "usage_moderations",
    "usage_images",
    "usage_audio_speeches",
    "usage_audio_transcriptions",
    "costs",
    "spend_limit",
    "project_spend_limit",
    "spend_alerts",
    "project_spend_alerts",
    "rate_limits",
    "audit_logs",
]
Endpoint = Literal[ApiEndpoint, "other"]
API_ENDPOINTS: tuple[ApiEndpoint, ...] = get_args(ApiEndpoint)
# The old names, from when every named endpoint was a list (tests/e2e uses them).
ListEndpoint = ApiEndpoint
LIST_ENDPOINTS = API_ENDPOINTS


@dataclass(frozen=True)
class Fault:
    """One failure.

    - status: answer `status` with the API's error body (and Retry-After /
      retry-after-ms when given); an empty `message` means the API's usual one.
    - slow: sleep `delay` seconds, then answer normally.
    - reset: abort the TCP connection (RST) without any response.
    - truncated: a 200 whose Content-Length exceeds the bytes sent; then close.
    - malformed_json: a 200 whose body is not JSON.
    - wrong_shape: a 200 of valid JSON that breaks the schema.
    - repeat_cursor: ignore `after`; always the first page, with has_more true.
    - oversized_page: ten times `limit` items, all valid.
    """

    kind: FaultKind
    status: int = 500
    retry_after: str | None = None  # the raw Retry-After header value
    retry_after_ms: int | None = None
    delay: float = 0.0
    message: str = ""

    def __post_init__(self) -> None:
        if self.kind == "status" and not 400 <= self.status <= 599:
            raise ValueError(f"a status fault needs a 4xx or 5xx status, not {self.status}")
        if self.delay < 0:
            raise ValueError("delay must not be negative")


@dataclass
class _Armed:
    fault: Fault
    endpoint: ApiEndpoint | None
    project_id: str | None
    remaining: int | None  # None: until cleared

    def matches(self, endpoint: Endpoint, project_id: str | None) -> bool:
        if self.endpoint is not None and self.endpoint != endpoint:
            return False
        return self.project_id is None or self.project_id == project_id


class FaultInjector:
    """Faults armed for coming requests, plus an optional random mix.

    Armed faults are tried first, oldest first; the first that matches the
    request is used and spends one of its `times`. Only when none matches does
    the random mix get a chance.
    """

    def __init__(self, *, latency: float = 0.0) -> None:
        self.latency = latency  # seconds added to every request
        self._armed: list[_Armed] = []
        self._random_rate = 0.0
        self._random_faults: tuple[Fault, ...] = ()
        self._random_endpoints: frozenset[str] | None = None
        self._rng = random.Random(0)

    def add(
        self,
        fault: Fault,
        *,
        endpoint: ApiEndpoint | None = None,
        project_id: str | None = None,
        times: int | None = 1,
    ) -> None:
        """Arm `fault` for the next `times` matching requests (None: until `clear`)."""
        if times is not None and times < 1:
            raise ValueError("times must be at least 1, or None for until cleared")
        self._armed.append(_Armed(fault, endpoint, project_id, times))

    def set_random(
        self,
        rate: float,
        faults: Sequence[Fault],
        seed: int,
        *,
        endpoints: Collection[ApiEndpoint] | None = None,
    ) -> None:
        """Hit each request with probability `rate` by one of `faults`, reproducibly;
        only requests to `endpoints` when given."""
        if not 0.0 <= rate <= 1.0:
            raise ValueError("rate must be between 0 and 1")
        if rate > 0 and not faults:
            raise ValueError("a random rate needs at least one fault to pick from")
        if endpoints is not None and not endpoints:
            raise ValueError("endpoints must name at least one endpoint, or be None for all")
        self._random_rate = rate
        self._random_faults = tuple(faults)
        self._random_endpoints = None if endpoints is None else frozenset(endpoints)
        self._rng = random.Random(seed)

    def clear(self) -> None:
        """Disarm everything, the random mix included; latency stays."""
        self._armed.clear()
        self._random_rate = 0.0
        self._random_faults = ()
        self._random_endpoints = None

    def pending(self) -> int:
        """Armed faults not yet spent (each counts once, however many times it has left)."""
        return len(self._armed)

    def take(self, endpoint: Endpoint, project_id: str | None = None) -> Fault | None:
        """The fault this request suffers, spending it; None for a normal answer."""
        for index, armed in enumerate(self._armed):
            if not armed.matches(endpoint, project_id):
                continue
            if armed.remaining is not None:
                armed.remaining -= 1
                if armed.remaining == 0:
                    del self._armed[index]
            return armed.fault
        if self._random_endpoints is not None and endpoint not in self._random_endpoints:
            return None
        if self._random_rate > 0 and self._rng.random() < self._random_rate:
            return self._random_faults[self._rng.randrange(len(self._random_faults))]
        return None
