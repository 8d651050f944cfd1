"""The simulator as an aiohttp app: the Admin API's organization listings under /v1."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TypeVar

from aiohttp import web

from exporter.simulator import buckets, errors, params, wire
from exporter.simulator.audit import AuditQuery, SimAuditEvent
from exporter.simulator.billing import SimRateLimit, SimSpendAlert
from exporter.simulator.buckets import BucketPaging, BucketQuery, CostAmounts, ResultsOf
from exporter.simulator.errors import ApiError
from exporter.simulator.fault_responses import ConnectionAbortedByFaultError, act_out
from exporter.simulator.faults import API_ENDPOINTS, ApiEndpoint, Endpoint, FaultInjector
from exporter.simulator.ordered import Page, UnknownCursorError
from exporter.simulator.organization import (
    Organization,
    SimAdminKey,
    SimCertificate,
    SimInvite,
    SimMember,
    SimServiceAccount,
    UnknownProjectError,
)
from exporter.simulator.replies import (
    BucketListing,
    Listing,
    Pager,
    Reply,
    body_of,
    json_response,
)
from exporter.simulator.usage import (
    COST_FILTERS,
    COST_GROUP_FIELDS,
    GROUP_FIELDS,
    METRICS,
    USAGE_FILTERS,
    USAGE_SOURCES,
    UsageSource,
)
from exporter.simulator.wire import JsonObject, RawJson

ADMIN_KEY_PREFIX = "sk-admin-"
# Status recorded for a request that got no HTTP response (a `reset` fault).
NO_RESPONSE = 0


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    endpoint: Endpoint
    path: str
    query: dict[str, str]
    status: int  # NO_RESPONSE (0) when the connection was reset


@dataclass
class SimulatorState:
    """Everything the simulator serves and remembers; tests mutate it while it serves."""

    org: Organization
    faults: FaultInjector = field(default_factory=FaultInjector)
    # None: any sk-admin- bearer is accepted; a set: only these (key rotation tests).
    accepted_admin_keys: set[str] | None = None
    requests: list[RecordedRequest] = field(default_factory=list)
    # The time usage and costs are answered "as of"; tests set a fake clock.
    clock: Callable[[], float] = time.time
    # Legal paging of the usage and costs endpoints that clients must follow.
    usage_paging: BucketPaging = field(default_factory=BucketPaging)
    # Costs' amount.value as a JSON string: never, sometimes (which is deterministic), always.
    cost_amounts_as_strings: CostAmounts = "sometimes"
    # Requests being answered now, and the most there ever were at once (bound tests).
    in_flight: int = 0
    most_in_flight: int = 0

    def request_count(self, endpoint: Endpoint | None = None) -> int:
        """Requests served so far, optionally for one endpoint only."""
        if endpoint is None:
            return len(self.requests)
        return sum(1 for r in self.requests if r.endpoint == endpoint)


SIMULATOR_STATE: web.AppKey[SimulatorState] = web.AppKey("simulator_state", SimulatorState)

# Each list route is named after its endpoint; the retrieve route counts as "other".
_ROUTE_ENDPOINTS: dict[str, Endpoint] = {name: name for name in API_ENDPOINTS}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
T = TypeVar("T")
ORGANIZATION = "/v1/organization"


def create_simulator_app(state: SimulatorState) -> web.Application:
    app = web.Application(middlewares=[_record, _guard])
    app[SIMULATOR_STATE] = state
    app.router.add_get("/v1/organization/projects", _list_projects, name="projects")
    app.router.add_get(
        "/v1/organization/projects/{project_id}/api_keys", _list_api_keys, name="api_keys"
    )
    app.router.add_get("/v1/organization/projects/{project_id}", _get_project, name="project")
    app.router.add_get(
        f"{ORGANIZATION}/projects/{{project_id}}/service_accounts",
        _list_service_accounts,
        name="service_accounts",
    )
    app.router.add_get(
        f"{ORGANIZATION}/admin_api_keys", _list_admin_api_keys, name="admin_api_keys"
    )
    app.router.add_get(f"{ORGANIZATION}/users", _list_users, name="users")
    app.router.add_get(f"{ORGANIZATION}/invites", _list_invites, name="invites")
    app.router.add_get(f"{ORGANIZATION}/certificates", _list_certificates, name="certificates")
    for source in USAGE_SOURCES:
        app.router.add_get(
            f"{ORGANIZATION}/usage/{source}", _usage_handler(source), name=USAGE_ENDPOINTS[source]
        )
    app.router.add_get(f"{ORGANIZATION}/costs", _costs, name="costs")
    app.router.add_get(f"{ORGANIZATION}/spend_limit", _spend_limit, name="spend_limit")
    app.router.add_get(
        f"{ORGANIZATION}/projects/{{project_id}}/spend_limit",
        _project_spend_limit,
        name="project_spend_limit",
    )
    app.router.add_get(f"{ORGANIZATION}/spend_alerts", _spend_alerts, name="spend_alerts")
    app.router.add_get(
        f"{ORGANIZATION}/projects/{{project_id}}/spend_alerts",
        _project_spend_alerts,
        name="project_spend_alerts",
    )
    app.router.add_get(
        f"{ORGANIZATION}/projects/{{project_id}}/rate_limits", _rate_limits, name="rate_limits"
    )
    app.router.add_get(f"{ORGANIZATION}/audit_logs", _list_audit_logs, name="audit_logs")
    return app


USAGE_ENDPOINTS: dict[UsageSource, ApiEndpoint] = {
    "completions": "usage_completions",
    "embeddings": "usage_embeddings",
    "moderations": "usage_moderations",
    "images": "usage_images",
    "audio_speeches": "usage_audio_speeches",
    "audio_transcriptions": "usage_audio_transcriptions",
}


@asynccontextmanager
async def serve_simulator(
    state: SimulatorState, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[str]:
    """Serve on `host`:`port` (0: any free port) and yield the base URL, e.g. http://127.0.0.1:4711/v1."""
    # No access log: requests carry the bearer token, and nothing here may print it.
    runner = web.AppRunner(create_simulator_app(state), access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound_port = runner.addresses[0][1]
        url_host = f"[{host}]" if ":" in host else host
        yield f"http://{url_host}:{bound_port}/v1"
    finally:
        await runner.cleanup()


def _endpoint_of(request: web.Request) -> Endpoint:
    name = request.match_info.route.name
    return _ROUTE_ENDPOINTS.get(name or "", "other")


@web.middleware
async def _record(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Record every request with the status it got, so tests can count upstream calls."""
    state = request.app[SIMULATOR_STATE]
    status = NO_RESPONSE
    state.in_flight += 1
    state.most_in_flight = max(state.most_in_flight, state.in_flight)
    try:
        response = await handler(request)
        status = response.status
        return response
    except ConnectionAbortedByFaultError:
        # The connection is gone; aiohttp's write of this fails quietly.
        return web.Response(status=500)
    finally:
        state.in_flight -= 1
        state.requests.append(
            RecordedRequest(_endpoint_of(request), request.path, dict(request.query), status)
        )


@web.middleware
async def _guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Unknown URLs, latency, the bearer check, and ApiError as the API's error body."""
    state = request.app[SIMULATOR_STATE]
    try:
        if state.faults.latency > 0:
            await asyncio.sleep(state.faults.latency)
        routing_error = request.match_info.http_exception
        if routing_error is not None:
            raise errors.invalid_url(request.method, request.path, routing_error.status)
        _check_bearer(request, state.accepted_admin_keys)
        return await handler(request)
    except ApiError as error:
        return json_response(error.body(), status=error.status, headers=error.headers())


def _check_bearer(request: web.Request, accepted: set[str] | None) -> None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise errors.missing_key()
    if not token.startswith(ADMIN_KEY_PREFIX):
        raise errors.not_admin_key()
    if accepted is not None and token not in accepted:
        raise errors.rejected_admin_key()


async def _answer(
    request: web.Request, project_id: str | None, answer: Callable[[], Reply]
) -> web.StreamResponse:
    endpoint = _endpoint_of(request)
    fault = request.app[SIMULATOR_STATE].faults.take(endpoint, project_id)
    if fault is not None:
        return await act_out(fault, request, endpoint, answer)
    return json_response(body_of(answer()))


async def _list_projects(request: web.Request) -> web.StreamResponse:
    org = request.app[SIMULATOR_STATE].org

    def answer() -> Reply:
        page = params.page_query(request.query)
        archived = params.include_archived(request.query)

        def pager(after: str | None, limit: int) -> tuple[list[JsonObject], bool]:
            try:
                found = org.page_projects(include_archived=archived, after=after, limit=limit)
            except UnknownCursorError:
                raise params.unknown_cursor(after or "") from None
            return [wire.project(p) for p in found.items], found.has_more

        return Listing(pager, page.after, page.limit)

    return await _answer(request, None, answer)


async def _list_api_keys(request: web.Request) -> web.StreamResponse:
    org = request.app[SIMULATOR_STATE].org
    project_id = request.match_info["project_id"]

    def answer() -> Reply:
        page = params.page_query(request.query)
        access = params.owner_project_access(request.query)
        _require_project(org, project_id)

        def pager(after: str | None, limit: int) -> tuple[list[JsonObject], bool]:
            try:
                found = org.page_keys(project_id, access=access, after=after, limit=limit)
            except UnknownCursorError:
                raise params.unknown_cursor(after or "") from None
            except UnknownProjectError:
                raise errors.project_not_found(project_id) from None
            return [wire.api_key(k) for k in found.items], found.has_more

        return Listing(pager, page.after, page.limit)

    return await _answer(request, project_id, answer)


async def _get_project(request: web.Request) -> web.StreamResponse:
    org = request.app[SIMULATOR_STATE].org
    project_id = request.match_info["project_id"]

    def answer() -> Reply:
        _require_project(org, project_id)
        return wire.project(org.project(project_id))

    return await _answer(request, project_id, answer)


def _pager(
    fetch: Callable[[str | None, int], Page[T]], to_json: Callable[[T], JsonObject]
) -> Pager:
    """A Pager over one of the organization's collections; an unknown cursor is a 400."""

    def pager(after: str | None, limit: int) -> tuple[list[JsonObject], bool]:
        try:
            found = fetch(after, limit)
        except UnknownCursorError:
            raise params.unknown_cursor(after or "") from None
        return [to_json(item) for item in found.items], found.has_more

    return pager


async def _list_admin_api_keys(request: web.Request) -> web.StreamResponse:
    org = request.app[SIMULATOR_STATE].org

    def answer() -> Reply:
        page = params.page_query(request.query)
        order = params.order(request.query, default="asc")

        def fetch(after: str | None, limit: int) -> Page[SimAdminKey]:
            return org.page_admin_keys(order=order, after=after, limit=limit)

        return Listing(_pager(fetch, wire.admin_api_key), page.after, page.limit)

    return await _answer(request, None, answer)


async def _list_users(request: web.Request) -> web.StreamResponse:
    org = request.app[SIMULATOR_STATE].org

    def answer() -> Reply:
        page = params.page_query(request.query)
        emails = params.emails(
            request.query.getall("emails", []) + request.query.getall("emails[]", [])
        )

        def fetch(after: str | None, limit: int) -> Page[SimMember]:
            return org.page_members(after=after, limit=limit, emails=emails)

        return Listing(_pager(fetch, wire.user), page.after, page.limit)

    return await _answer(request, None, answer)


async def _list_invites(request: web.Request) -> web.StreamResponse:
    org = request.app[SIMULATOR_STATE].org

    def answer() -> Reply:
        page = params.page_query(request.query)

        def fetch(after: str | None, limit: int) -> Page[SimInvite]:
            return org.page_invites(after=after, limit=limit)

        return Listing(_pager(fetch, wire.invite), page.after, page.limit)

    return await _answer(request, None, answer)


async def _list_certificates(request: web.Request) -> web.StreamResponse:
    org = request.app[SIMULATOR_STATE].org

    def answer() -> Reply:
        page = params.page_query(request.query)
        order = params.order(request.query, default="desc")

        def fetch(after: str | None, limit: int) -> Page[SimCertificate]:
            return org.page_certificates(order=order, after=after, limit=limit)

        return Listing(_pager(fetch, wire.certificate), page.after, page.limit)

    return await _answer(request, None, answer)


async def _list_service_accounts(request: web.Request) -> web.StreamResponse:
    org = request.app[SIMULATOR_STATE].org
    project_id = request.match_info["project_id"]

    def answer() -> Reply:
        page = params.page_query(request.query)
        _require_project(org, project_id)
        if org.project(project_id).status == "archived":
            raise errors.project_archived(project_id)  # a real quirk, documented in the spec

        def fetch(after: str | None, limit: int) -> Page[SimServiceAccount]:
            try:
                return org.page_service_accounts(project_id, after=after, limit=limit)
            except UnknownProjectError:
                raise errors.project_not_found(project_id) from None

        return Listing(_pager(fetch, wire.service_account), page.after, page.limit)

    return await _answer(request, project_id, answer)


def _require_project(org: Organization, project_id: str) -> None:
    try:
        org.project(project_id)
    except UnknownProjectError:
        raise errors.project_not_found(project_id) from None


# -- usage and costs ---------------------------------------------------------


def _bucket_listing(
    state: SimulatorState, q: BucketQuery, endpoint: str, results_of: ResultsOf
) -> BucketListing:
    start, offset = q.page if q.page is not None else (q.first, 0)

    def token(at: int, skip: int) -> str:
        return buckets.encode_token(endpoint, q.width_name, at, skip)

    pager = buckets.make_pager(
        q,
        endpoint=endpoint,
        results_of=results_of,
        clock=lambda: state.clock(),
        paging=lambda: state.usage_paging,
    )
    return BucketListing(pager, q.first, start, offset, q.limit, q.page_token, token)


def _usage_handler(source: UsageSource) -> Handler:
    endpoint = USAGE_ENDPOINTS[source]
    result_object = f"organization.usage.{source}.result"
    fields = GROUP_FIELDS[source]
    metrics = METRICS[source]

    async def handler(request: web.Request) -> web.StreamResponse:
        state = request.app[SIMULATOR_STATE]

        def answer() -> Reply:
            q = buckets.parse_query(
                request.query,
                endpoint=endpoint,
                limits=buckets.USAGE_LIMITS,
                group_fields=fields,
                filters=USAGE_FILTERS,
            )

            def results_of(start: int, now: int) -> list[RawJson]:
                usage = state.org.usage
                final = start + q.width + usage.lateness <= now
                key = ("encoded", endpoint, start, q.width, q.group_by, _frozen(q.filters))
                if final and isinstance(found := usage.cached(key), list):
                    return found
                groups = usage.usage_bucket(
                    source, start, start + q.width, q.group_by, q.filters, now
                )
                results = buckets.usage_results(
                    groups,
                    result_object=result_object,
                    metrics=metrics,
                    fields=fields,
                    group_by=q.group_by,
                )
                if final:
                    usage.remember(key, results)
                return results

            return _bucket_listing(state, q, endpoint, results_of)

        return await _answer(request, None, answer)

    return handler


async def _costs(request: web.Request) -> web.StreamResponse:
    state = request.app[SIMULATOR_STATE]

    def answer() -> Reply:
        q = buckets.parse_query(
            request.query,
            endpoint="costs",
            limits=buckets.COSTS_LIMITS,
            group_fields=COST_GROUP_FIELDS,
            filters=COST_FILTERS,
        )

        def results_of(start: int, now: int) -> list[RawJson]:
            usage = state.org.usage
            amounts = state.cost_amounts_as_strings
            final = start + q.width + usage.cost_lateness <= now
            key = ("encoded", "costs", start, q.group_by, _frozen(q.filters), amounts)
            if final and isinstance(found := usage.cached(key), list):
                return found
            groups = usage.cost_bucket(start, start + q.width, q.group_by, q.filters, now)
            results = buckets.cost_results(
                {k: (c.micro, c.quantity, c.quantity_unit) for k, c in groups.items()},
                bucket_start=start,
                group_by=q.group_by,
                amounts=amounts,
            )
            if final:
                usage.remember(key, results)
            return results

        return _bucket_listing(state, q, "costs", results_of)

    return await _answer(request, None, answer)


def _frozen(filters: dict[str, tuple[str, ...]]) -> tuple[tuple[str, frozenset[str]], ...]:
    return tuple(sorted((k, frozenset(v)) for k, v in filters.items()))


# -- spend limits, spend alerts, rate limits ---------------------------------


async def _spend_limit(request: web.Request) -> web.StreamResponse:
    org = request.app[SIMULATOR_STATE].org

    def answer() -> Reply:
        limit = org.spend_limit()
        if limit is None:
            raise errors.no_spend_limit(None)
        return wire.spend_limit(limit, project=False)

    return await _answer(request, None, answer)


async def _project_spend_limit(request: web.Request) -> web.StreamResponse:
    org = request.app[SIMULATOR_STATE].org
    project_id = request.match_info["project_id"]

    def answer() -> Reply:
        _require_project(org, project_id)
        limit = org.project_spend_limit(project_id)
        if limit is None:
            raise errors.no_spend_limit(project_id)
        return wire.spend_limit(limit, project=True)

    return await _answer(request, project_id, answer)


async def _spend_alerts(request: web.Request) -> web.StreamResponse:
    org = request.app[SIMULATOR_STATE].org

    def answer() -> Reply:
        page = params.page_query(request.query)
        order = params.order(request.query, default="asc")

        def fetch(after: str | None, limit: int) -> Page[SimSpendAlert]:
            return org.page_spend_alerts(order=order, after=after, limit=limit)

        def to_json(alert: SimSpendAlert) -> JsonObject:
            return wire.spend_alert(alert, project=False)

        return Listing(_pager(fetch, to_json), page.after, page.limit)

    return await _answer(request, None, answer)


async def _project_spend_alerts(request: web.Request) -> web.StreamResponse:
    org = request.app[SIMULATOR_STATE].org
    project_id = request.match_info["project_id"]

    def answer() -> Reply:
        page = params.page_query(request.query)
        order = params.order(request.query, default="asc")
        _require_project(org, project_id)

        def fetch(after: str | None, limit: int) -> Page[SimSpendAlert]:
            try:
                return org.page_project_spend_alerts(
                    project_id, order=order, after=after, limit=limit
                )
            except UnknownProjectError:
                raise errors.project_not_found(project_id) from None

        def to_json(alert: SimSpendAlert) -> JsonObject:
            return wire.spend_alert(alert, project=True)

        return Listing(_pager(fetch, to_json), page.after, page.limit)

    return await _answer(request, project_id, answer)


async def _rate_limits(request: web.Request) -> web.StreamResponse:
    org = request.app[SIMULATOR_STATE].org
    project_id = request.match_info["project_id"]

    def answer() -> Reply:
        page = params.page_query(request.query, default_limit=100)
        _require_project(org, project_id)

        def fetch(after: str | None, limit: int) -> Page[SimRateLimit]:
            try:
                return org.page_rate_limits(project_id, after=after, limit=limit)
            except UnknownProjectError:
                raise errors.project_not_found(project_id) from None

        return Listing(_pager(fetch, wire.rate_limit), page.after, page.limit)

    return await _answer(request, project_id, answer)


# -- audit log ---------------------------------------------------------------


async def _list_audit_logs(request: web.Request) -> web.StreamResponse:
    org = request.app[SIMULATOR_STATE].org
    query = request.query

    def answer() -> Reply:
        page = params.cursor_query(query)
        since, until = params.effective_at_range(query)
        audit_query = AuditQuery(
            since=since,
            until=until,
            event_types=params.id_filter(query.getall("event_types[]", [])),
            project_ids=params.id_filter(query.getall("project_ids[]", [])),
            actor_ids=params.id_filter(query.getall("actor_ids[]", [])),
            actor_emails=params.id_filter(query.getall("actor_emails[]", [])),
            resource_ids=params.id_filter(query.getall("resource_ids[]", [])),
        )
        if not org.audit_logging:
            raise errors.audit_logging_disabled()
        before = page.before

        def fetch(after: str | None, limit: int) -> Page[SimAuditEvent]:
            try:
                return org.page_audit_events(audit_query, limit=limit, after=after, before=before)
            except UnknownCursorError as error:
                # An unknown `after` is _pager's 400; an unknown `before` is this one.
                if before is not None and error.args[0] == before:
                    raise params.unknown_cursor(before, param="before") from None
                raise

        return Listing(_pager(fetch, wire.audit_event), page.after, page.limit)

    return await _answer(request, None, answer)
