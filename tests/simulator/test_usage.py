"""Usage and costs: parameters, grouping, late data, paging, explicit usage, quirks."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from exporter.simulator.app import SimulatorState
from exporter.simulator.buckets import BucketPaging, decimal_string
from exporter.simulator.faults import Fault
from exporter.simulator.organization import (
    DAY,
    Organization,
    OrganizationSpec,
    SimServiceAccount,
    build_organization,
)
from exporter.simulator.usage import ACTIVE_WINDOW, METRICS, USAGE_SOURCES, UsageModel

Client = TestClient[web.Request, web.Application]
NOW = 1_800_000_000  # a Friday, 08:00 UTC
HOUR = 3_600
USAGE = "/v1/organization/usage"
COSTS = "/v1/organization/costs"
LATE = 15 * 60


async def _get(client: Client, path: str, query: Any) -> tuple[int, Any]:
    async with client.get(path, params=query) as response:
        return response.status, await response.json()


async def _walk(client: Client, path: str, query: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """Every page's body, following next_page."""
    pages: list[dict[str, Any]] = []
    page: list[tuple[str, str]] = []
    for _ in range(200):
        status, body = await _get(client, path, query + page)
        assert status == 200, body
        pages.append(body)
        if not body["has_more"]:
            return pages
        page = [("page", body["next_page"])]
    raise AssertionError("paging did not end")


def _totals(pages: list[dict[str, Any]], metric: str) -> dict[int, int]:
    """Bucket start -> the metric summed over every result (and every page of it)."""
    out: dict[int, int] = {}
    for page in pages:
        for bucket in page["data"]:
            value = sum(r[metric] for r in bucket["results"])
            out[bucket["start_time"]] = out.get(bucket["start_time"], 0) + value
    return out


@pytest.fixture
def timed(state: SimulatorState) -> SimulatorState:
    state.clock = lambda: NOW
    return state


# -- parameters ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "query", "param", "code"),
    [
        (f"{USAGE}/completions", {}, "start_time", "missing_required_parameter"),
        (f"{USAGE}/embeddings", {"start_time": "yesterday"}, "start_time", "invalid_type"),
        (f"{USAGE}/images", {"start_time": "1", "end_time": "x"}, "end_time", "invalid_type"),
        (f"{USAGE}/completions", {"start_time": "1", "bucket_width": "2h"}, "bucket_width", None),
        (
            f"{USAGE}/completions",
            {"start_time": "1", "bucket_width": "1m", "limit": "1441"},
            "limit",
            "integer_above_max_value",
        ),
        (
            f"{USAGE}/completions",
            {"start_time": "1", "bucket_width": "1h", "limit": "169"},
            "limit",
            "integer_above_max_value",
        ),
        (
            f"{USAGE}/moderations",
            {"start_time": "1", "limit": "32"},
            "limit",
            "integer_above_max_value",
        ),
        (
            f"{USAGE}/moderations",
            {"start_time": "1", "limit": "0"},
            "limit",
            "integer_below_min_value",
        ),
        (
            f"{USAGE}/embeddings",
            {"start_time": "1", "group_by": "batch"},
            "group_by",
            "invalid_value",
        ),
        (f"{USAGE}/completions", {"start_time": "1", "page": "page_bogus"}, "page", None),
        (COSTS, {"start_time": "1", "bucket_width": "1h"}, "bucket_width", "invalid_value"),
        (COSTS, {"start_time": "1", "limit": "181"}, "limit", "integer_above_max_value"),
        (COSTS, {"start_time": "1", "group_by": "model"}, "group_by", "invalid_value"),
    ],
)
async def test_bad_parameters_get_400_naming_them(
    client: Client, timed: SimulatorState, path: str, query: dict[str, str], param: str,
    code: str | None,
) -> None:  # fmt: skip
    status, body = await _get(client, path, query)
    assert status == 400
    assert body["error"]["param"] == param
    if code is not None:
        assert body["error"]["code"] == code


async def test_the_largest_limits_are_accepted(client: Client, timed: SimulatorState) -> None:
    start = str(NOW - 3 * DAY)
    for width, limit in (("1m", "1440"), ("1h", "168"), ("1d", "31")):
        query = {"start_time": start, "bucket_width": width, "limit": limit}
        status, _ = await _get(client, f"{USAGE}/audio_speeches", query)
        assert status == 200
    assert (await _get(client, COSTS, {"start_time": start, "limit": "180"}))[0] == 200


async def test_a_page_token_of_another_endpoint_or_width_is_refused(
    client: Client, timed: SimulatorState
) -> None:
    query = {"start_time": str(NOW - 5 * DAY), "limit": "1"}
    _, first = await _get(client, f"{USAGE}/completions", query)
    token = first["next_page"]
    assert (await _get(client, f"{USAGE}/completions", {**query, "page": token}))[0] == 200
    assert (await _get(client, f"{USAGE}/embeddings", {**query, "page": token}))[0] == 400
    assert (await _get(client, COSTS, {**query, "page": token}))[0] == 400
    hourly = {**query, "bucket_width": "1h", "page": token}
    assert (await _get(client, f"{USAGE}/completions", hourly))[0] == 400


# -- buckets and grouping --------------------------------------------------------


async def test_buckets_are_aligned_listed_when_empty_and_the_open_one_is_last(
    client: Client, timed: SimulatorState
) -> None:
    query = {"start_time": str(NOW - 3 * HOUR - 123), "bucket_width": "1h"}
    _, body = await _get(client, f"{USAGE}/completions", query)
    starts = [b["start_time"] for b in body["data"]]
    first = NOW - 3 * HOUR - 123
    assert starts == list(range(first - first % HOUR, NOW + 1, HOUR))
    assert all(b["end_time"] == b["start_time"] + HOUR for b in body["data"])
    assert body["data"][-1]["start_time"] <= NOW < body["data"][-1]["end_time"]
    midnight = 1_500_000_000 - 1_500_000_000 % DAY
    old = {"start_time": str(midnight + 5), "end_time": str(midnight + 3 * DAY)}
    _, empty = await _get(client, f"{USAGE}/completions", old)
    assert len(empty["data"]) == 3
    assert all(b["results"] == [] for b in empty["data"])
    assert all(b["start_time"] % DAY == 0 for b in empty["data"])


async def test_fields_not_grouped_by_are_null_and_totals_agree_across_groupings(
    client: Client, timed: SimulatorState
) -> None:
    base = [("start_time", str(NOW - 2 * DAY)), ("bucket_width", "1h"), ("limit", "168")]
    groupings: list[list[str]] = [[], ["api_key_id"], ["project_id", "model"], ["batch"]]
    totals = []
    for grouping in groupings:
        query = base + [("group_by", g) for g in grouping]
        pages = await _walk(client, f"{USAGE}/completions", query)
        results = [r for p in pages for b in p["data"] for r in b["results"]]
        for name in ("project_id", "user_id", "api_key_id", "model", "batch", "service_tier"):
            values = {r[name] for r in results}
            if name in grouping:
                assert values - {None}, name  # (keys and users may be null: the playground)
            else:
                assert values == {None}, name
        totals.append({m: _totals(pages, m) for m in METRICS["completions"]})
    assert all(t == totals[0] for t in totals)
    assert sum(totals[0]["num_model_requests"].values()) > 0


async def test_group_by_brackets_and_filters(client: Client, timed: SimulatorState) -> None:
    query = [("start_time", str(NOW - DAY)), ("group_by[]", "project_id")]
    pages = await _walk(client, f"{USAGE}/embeddings", query)
    projects = {r["project_id"] for p in pages for b in p["data"] for r in b["results"]}
    assert len(projects) > 1
    project = sorted(projects)[0]
    filtered = await _walk(client, f"{USAGE}/embeddings", [*query, ("project_ids", project)])
    kept = {r["project_id"] for p in filtered for b in p["data"] for r in b["results"]}
    assert kept == {project}


def test_widths_agree_on_final_values(org: Organization) -> None:
    day = NOW - NOW % DAY - DAY
    for source in USAGE_SOURCES:
        daily = org.usage.final_values(source, day, day + DAY, "1d", ["api_key_id"])
        hourly = org.usage.final_values(source, day, day + DAY, "1h", ["api_key_id"])
        minutes = org.usage.final_values(source, day, day + DAY, "1m", ["api_key_id"])
        for metric in METRICS[source]:
            for key, values in daily[day].items():
                by_hour = sum(g[key][metric] for g in hourly.values() if key in g)
                by_minute = sum(g[key][metric] for g in minutes.values() if key in g)
                assert values[metric] == by_hour == by_minute, (source, metric, key)


# -- late data -------------------------------------------------------------------


def _one_series(lateness: int = LATE) -> UsageModel:
    usage = UsageModel(lateness=lateness)
    usage.add_series(
        "completions",
        project_id="proj_a",
        api_key_id="key_a",
        user_id=None,
        model="gpt-4o",
        start=NOW - 30 * DAY,
        rate=600,
        shape=1,  # never zero
        per_request={"input_tokens": 1_000, "output_tokens": 100},
    )
    return usage


def test_a_closed_bucket_grows_until_end_plus_lateness_then_stays_final() -> None:
    usage = _one_series()
    start, end = NOW, NOW + HOUR
    final = usage.final_values("completions", start, end, "1h")[start][()]
    seen: list[int] = []
    for now in range(start, end + LATE + 10 * 60, 30):
        reported = usage.reported_values("completions", start, end, "1h", now=now)
        value = reported[start][()]["input_tokens"] if reported else 0
        seen.append(value)
        if now < end + LATE:
            assert value < final["input_tokens"], now
        else:
            assert reported[start][()] == final, now
    assert seen == sorted(seen)  # monotone
    assert 0 < seen[len(seen) // 3] < final["input_tokens"]  # the open bucket grows
    at_end = usage.reported_values("completions", start, end, "1h", now=end)[start][()]
    assert at_end["input_tokens"] < final["input_tokens"]
    assert at_end["input_tokens"] * 1_000 % 1_000 == 0  # integers


def test_reported_values_are_deterministic_for_a_bucket_and_a_now() -> None:
    one, two = _one_series(), _one_series()
    for now in (NOW + 60, NOW + 1_234, NOW + HOUR + 7):
        a = one.reported_values("completions", NOW, NOW + HOUR, "1m", ["model"], now=now)
        assert a == two.reported_values("completions", NOW, NOW + HOUR, "1m", ["model"], now=now)


async def test_the_http_answer_converges_to_the_final_values(
    client: Client, state: SimulatorState, org: Organization
) -> None:
    bucket = NOW - NOW % HOUR - HOUR
    query = [("start_time", str(bucket)), ("end_time", str(bucket + HOUR)), ("bucket_width", "1h")]
    query.append(("group_by", "api_key_id"))
    final = org.usage.final_values("completions", bucket, bucket + HOUR, "1h", ["api_key_id"])
    truth = {k[0]: v["input_tokens"] for k, v in final[bucket].items()}
    state.clock = lambda: bucket + HOUR + LATE - 60
    _, early = await _get(client, f"{USAGE}/completions", query)
    state.clock = lambda: bucket + HOUR + LATE
    _, late = await _get(client, f"{USAGE}/completions", query)
    got = {r["api_key_id"]: r["input_tokens"] for r in late["data"][0]["results"]}
    assert got == truth
    early_total = sum(r["input_tokens"] for r in early["data"][0]["results"])
    assert early_total < sum(truth.values())


# -- paging ------------------------------------------------------------------------


async def test_next_page_walks_every_bucket_once(client: Client, timed: SimulatorState) -> None:
    query = [("start_time", str(NOW - 4 * DAY)), ("limit", "2")]
    pages = await _walk(client, f"{USAGE}/completions", query)
    assert [len(p["data"]) for p in pages] == [2, 2, 1]
    starts = [b["start_time"] for p in pages for b in p["data"]]
    first = NOW - 4 * DAY
    assert starts == list(range(first - first % DAY, NOW + 1, DAY))
    assert pages[-1]["next_page"] is None


async def test_paging_quirks_keep_the_sums(client: Client, timed: SimulatorState) -> None:
    query = [("start_time", str(NOW - 6 * HOUR)), ("bucket_width", "1h"), ("group_by", "model")]
    query.append(("group_by", "api_key_id"))
    whole = await _walk(client, f"{USAGE}/completions", query)
    assert len(whole) == 1
    timed.usage_paging = BucketPaging(max_buckets_per_page=2)
    short = await _walk(client, f"{USAGE}/completions", query)
    assert [len(p["data"]) for p in short] == [2, 2, 2, 1]
    timed.usage_paging = BucketPaging(max_results_per_page=5)
    split = await _walk(client, f"{USAGE}/completions", query)
    assert all(sum(len(b["results"]) for b in p["data"]) <= 5 for p in split)
    listed = [b["start_time"] for p in split for b in p["data"]]
    assert len(listed) > len(set(listed))  # a bucket went on over the next page
    # The same bucket start, listed again at the top of the next page.
    for previous, page in itertools.pairwise(split):
        if page["data"][0]["start_time"] == previous["data"][-1]["start_time"]:
            break
    else:
        raise AssertionError("no bucket was split")
    for pages in (short, split):
        assert _totals(pages, "input_tokens") == _totals(whole, "input_tokens")
        results = sorted(
            json.dumps(r, sort_keys=True) for p in pages for b in p["data"] for r in b["results"]
        )
        expected = sorted(
            json.dumps(r, sort_keys=True) for p in whole for b in p["data"] for r in b["results"]
        )
        assert results == expected


async def test_cursor_faults_bend_bucket_pages(client: Client, timed: SimulatorState) -> None:
    query = {"start_time": str(NOW - 5 * DAY), "limit": "2"}
    _, first = await _get(client, f"{USAGE}/completions", query)
    timed.faults.add(Fault("repeat_cursor"), endpoint="usage_completions")
    _, repeated = await _get(client, f"{USAGE}/completions", {**query, "page": first["next_page"]})
    assert repeated["next_page"] == first["next_page"]
    assert repeated["has_more"] is True
    assert repeated["data"] == first["data"]
    timed.faults.add(Fault("oversized_page"), endpoint="costs")
    _, oversized = await _get(client, COSTS, query)
    assert len(oversized["data"]) == 20
    assert [r.endpoint for r in timed.requests][-2:] == ["usage_completions", "costs"]


# -- explicit usage and the inventory ------------------------------------------------


def test_use_key_wakes_a_dormant_key_and_shows_in_usage() -> None:
    org = Organization(seed=3, now=NOW)
    project = org.add_project("p", id="proj_p")
    key = org.add_key(project.id, "dormant", id="key_dormant", created_at=NOW - 90 * DAY)
    assert key.last_used_at is None
    at = NOW + 600
    woken = org.use_key(project.id, key.id, at=at, input_tokens=500, output_tokens=20, requests=4)
    assert woken.last_used_at == at == org.key(project.id, key.id).last_used_at
    later = org.use_key(project.id, key.id, at=at - 100, input_tokens=1)
    assert later.last_used_at == at  # an older use does not move it back
    hour = at - at % HOUR
    final = org.usage.final_values("completions", hour, hour + HOUR, "1h", ["api_key_id"])
    assert final[hour][("key_dormant",)]["input_tokens"] == 501
    assert final[hour][("key_dormant",)]["num_model_requests"] == 5
    half = org.usage.reported_values("completions", hour, hour + HOUR, "1h", now=at + 1)
    assert half[hour][()]["input_tokens"] == 250  # half at once, the rest `lateness` later


def test_keyless_usage_groups_under_a_null_key(org: Organization) -> None:
    org.record_usage(org.projects()[0].id, at=NOW - HOUR, input_tokens=10, output_tokens=1)
    day = NOW - NOW % DAY
    final = org.usage.final_values("completions", day, day + DAY, "1d", ["api_key_id"])
    assert (None,) in final[day]


def test_only_recently_used_keys_have_background_usage(org: Organization) -> None:
    with_usage = {s.dims[2] for source in USAGE_SOURCES for s in org.usage.series(source)}
    keys = [k for p in org.projects(include_archived=True) for k in org.keys(p.id)]
    recent = {k.id for k in keys if k.last_used_at is not None and k.last_used_at >= NOW - 2 * DAY}
    assert with_usage - {None} == recent
    assert None in with_usage  # the playground
    day = NOW - NOW % DAY - DAY
    used = org.usage.final_values("completions", day, day + DAY, "1d", ["api_key_id"])
    assert {k[0] for k in used[day]} - {None} <= recent


def test_spec_knobs_for_active_keys_and_models() -> None:
    spec = OrganizationSpec(
        seed=5, now=NOW, projects=6, keys_per_project=10, active_keys=25, models_per_source=3
    )
    org = build_organization(spec)
    for source in USAGE_SOURCES:
        keyed = [s for s in org.usage.series(source) if s.dims[2] is not None]
        per_key: dict[object, set[object]] = {}
        for series in keyed:
            per_key.setdefault(series.dims[2], set()).add(series.dims[3])
        assert len(per_key) == 25
        assert all(len(models) == 3 for models in per_key.values())
    active = {str(s.dims[2]) for s in org.usage.series("completions") if s.dims[2] is not None}
    keys = {k.id: k for p in org.projects() for k in org.keys(p.id)}
    assert all((keys[k].last_used_at or 0) >= NOW - ACTIVE_WINDOW for k in active)
    owners = {isinstance(keys[k].owner, SimServiceAccount) for k in active}
    assert owners == {True, False}  # service-account and user keys both have usage


# -- costs -------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["never", "sometimes", "always"])
async def test_cost_amounts_as_strings(client: Client, timed: SimulatorState, mode: str) -> None:
    timed.cost_amounts_as_strings = mode  # type: ignore[assignment]
    query = [("start_time", str(NOW - 3 * DAY)), ("group_by", "line_item")]
    pages = await _walk(client, COSTS, query)
    values = [r["amount"]["value"] for p in pages for b in p["data"] for r in b["results"]]
    kinds = {type(v) for v in values}
    assert kinds == {"never": {float}, "sometimes": {float, str}, "always": {str}}[mode]
    for value in values:
        if isinstance(value, str):
            assert float(value) == pytest.approx(float(value))
            assert len(value.split(".")[1]) >= 2


def test_decimal_strings_are_exact() -> None:
    assert decimal_string(12_500_000) == "12.50"
    assert decimal_string(123) == "0.000123"
    assert decimal_string(1_000_000) == "1.00"


async def test_costs_group_like_the_spec_and_converge_to_the_final_values(
    client: Client, state: SimulatorState, org: Organization
) -> None:
    state.cost_amounts_as_strings = "never"
    day = NOW - NOW % DAY - DAY
    query = [("start_time", str(day)), ("end_time", str(day + DAY))]
    grouped = [*query, ("group_by", "project_id"), ("group_by", "api_key_id")]
    grouped.append(("group_by", "line_item"))
    state.clock = lambda: day + 2 * DAY - 60  # cost lateness is a day: not final yet
    _, early = await _get(client, COSTS, grouped)
    state.clock = lambda: day + 2 * DAY
    _, late = await _get(client, COSTS, grouped)
    final = org.usage.final_costs(day, day + DAY, ["project_id", "api_key_id", "line_item"])
    results = late["data"][0]["results"]
    assert {(r["project_id"], r["api_key_id"], r["line_item"]) for r in results} == set(final[day])
    for result in results:
        cost = final[day][(result["project_id"], result["api_key_id"], result["line_item"])]
        assert result["amount"]["value"] == cost.amount
        assert result["quantity"] == cost.quantity
        assert result["quantity_unit"] == cost.quantity_unit
    early_sum = sum(r["amount"]["value"] for r in early["data"][0]["results"])
    assert early_sum < sum(r["amount"]["value"] for r in results)
    assert any(r["api_key_id"] is None and r["project_id"] for r in results)  # storage
    assert any(r["project_id"] is None for r in results)  # the organization's own
    _, plain = await _get(client, COSTS, [*query, ("group_by", "project_id")])
    for result in plain["data"][0]["results"]:
        assert result["line_item"] is None
        assert result["quantity"] is None
        assert result["quantity_unit"] is None
    assert sum(r["amount"]["value"] for r in plain["data"][0]["results"]) == pytest.approx(
        sum(r["amount"]["value"] for r in results)
    )


# -- spend limits, alerts, rate limits ---------------------------------------------------


async def test_spend_limits_follow_the_organization(client: Client, org: Organization) -> None:
    project = org.projects()[0].id
    org.set_spend_limit(123_45, enforcing=True)
    _, body = await _get(client, "/v1/organization/spend_limit", {})
    assert body == {
        "object": "organization.spend_limit",
        "threshold_amount": 12_345,
        "currency": "USD",
        "interval": "month",
        "enforcement": {"status": "enforcing"},
    }
    org.clear_spend_limit()
    status, error = await _get(client, "/v1/organization/spend_limit", {})
    assert status == 404
    assert error["error"]["code"] == "not_found"
    path = f"/v1/organization/projects/{project}/spend_limit"
    org.set_project_spend_limit(project, 500)
    _, body = await _get(client, path, {})
    assert (body["object"], body["threshold_amount"]) == ("project.spend_limit", 500)
    assert body["enforcement"]["status"] == "inactive"
    org.clear_project_spend_limit(project)
    assert (await _get(client, path, {}))[0] == 404


async def test_spend_alerts_and_rate_limits_follow_the_organization(
    client: Client, org: Organization
) -> None:
    project = org.projects()[0].id
    alerts = f"/v1/organization/projects/{project}/spend_alerts"
    added = org.add_project_spend_alert(project, 777, id="alert_test", recipients=("a@b.c",))
    _, body = await _get(client, alerts, {"order": "desc", "limit": "1"})
    assert body["data"][0]["id"] == "alert_test"
    assert body["data"][0]["notification_channel"]["recipients"] == ["a@b.c"]
    org.remove_project_spend_alert(project, added.id)
    _, body = await _get(client, alerts, {"limit": "100"})
    assert "alert_test" not in {a["id"] for a in body["data"]}
    org.add_spend_alert(999, id="alert_org")
    _, body = await _get(client, "/v1/organization/spend_alerts", {"limit": "100"})
    assert body["data"][-1]["id"] == "alert_org"
    limits = f"/v1/organization/projects/{project}/rate_limits"
    _, body = await _get(client, limits, {})
    models = [r["model"] for r in body["data"]]
    assert len(models) > 3
    assert body["data"][0]["id"] == f"rl-{models[0]}"
    org.remove_rate_limit(project, models[0])
    _, body = await _get(client, limits, {})
    assert models[0] not in [r["model"] for r in body["data"]]


def test_generated_spend_controls(org: Organization) -> None:
    assert org.spend_limit() is not None
    assert len(org.spend_alerts()) >= 2
    limits = [org.project_spend_limit(p.id) for p in org.projects(include_archived=True)]
    assert None in limits
    statuses = [limit.status for limit in limits if limit is not None]
    assert statuses.count("enforcing") >= 1
    assert statuses.count("inactive") > statuses.count("enforcing")
    assert any(org.project_spend_alerts(p.id) for p in org.projects(include_archived=True))


@pytest.mark.parametrize("route", ["spend_limit", "spend_alerts", "rate_limits"])
async def test_unknown_projects_get_404(client: Client, route: str) -> None:
    status, body = await _get(client, f"/v1/organization/projects/proj_nope/{route}", {})
    assert status == 404
    assert body["error"]["param"] == "project_id"


async def test_project_faults_hit_one_projects_billing_only(
    client: Client, state: SimulatorState, org: Organization
) -> None:
    first, second = (p.id for p in org.projects()[:2])
    state.faults.add(
        Fault("status", status=500), endpoint="project_spend_alerts", project_id=second
    )
    path = "/v1/organization/projects/{}/spend_alerts"
    assert (await _get(client, path.format(first), {}))[0] == 200
    assert (await _get(client, path.format(second), {}))[0] == 500
    assert [r.endpoint for r in state.requests] == ["project_spend_alerts"] * 2
