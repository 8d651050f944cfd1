"""A small run of the benchmark (bench/), asserting only exact facts, never a time.

It drives the same code as ``make bench``: the simulator here, the exporter's side in
a worker process and in the real ``openai-key-exporter`` command.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

import pytest

from bench.main import measure_size
from bench.plan import PARTS, Plan
from bench.sizes import SDK_DEFAULT_LIMIT, SIZES, Size
from exporter.simulator.organization import build_organization

pytestmark = pytest.mark.slow  # three child processes and a few real seconds

SMALL = SIZES["small"]
STORM = 100


@pytest.fixture(scope="module")
def small_run() -> dict[str, Any]:
    plan = Plan(
        sizes=(SMALL,),
        parts=frozenset(PARTS),
        latency=0.01,  # enough for the storm's scrapes to pile up on one refresh
        concurrency=16,
        refresh_runs=2,
        naive_runs=1,
        scrape_runs=2,
        baseline_runs=1,
        http_scrapes=1,
        plain_scrapes=1,
        storm_scrapes=STORM,
    )
    return asyncio.run(measure_size(SMALL, plan))


def test_the_minimum_request_count_is_what_the_issue_says() -> None:
    # One project page at limit=100, then one key page per project.
    assert SMALL.minimum_requests == 1 + 10
    assert SIZES["large"].minimum_requests == 10 + 1_000
    assert SIZES["huge"].minimum_requests == 50 + 5_000
    assert Size("paged", 101, 250).minimum_requests == 2 + 101 * 3
    assert Size("empty", 0, 0).minimum_requests == 1 + 0


def test_every_refresh_makes_exactly_the_minimum_requests(small_run: dict[str, Any]) -> None:
    for refresh in small_run["refreshes"]:
        assert refresh["requests"] == SMALL.minimum_requests
        assert refresh["result"] == "success"
        assert refresh["keys"] == SMALL.keys


def credential_pages() -> int:
    """One listing each of admin keys, members, invites and certificates."""
    org = build_organization(SMALL.spec())
    return sum(
        max(1, math.ceil(len(listed) / 100))
        for listed in (org.admin_keys(), org.members(), org.invites(), org.certificates())
    )


def test_the_inventory_sizes_have_no_usage() -> None:
    # Their organizations measure the key inventory; the usage size measures usage.
    for size in SIZES.values():
        assert size.spec().active_keys == 0
    assert build_organization(SMALL.spec()).usage.series_count() == 0


def test_the_credential_collectors_add_one_listing_per_resource(
    small_run: dict[str, Any],
) -> None:
    for refresh in small_run["refreshes"]:
        assert refresh["credentials_requests"] == SMALL.minimum_requests + credential_pages()
        assert refresh["credentials_result"] == "success"


def test_every_default_collector_adds_one_listing_per_resource(small_run: dict[str, Any]) -> None:
    org = build_organization(SMALL.spec())
    pages = credential_pages()
    projects = org.projects(include_archived=False)
    # usage: one page per source (the window fits its limit); costs: one page; spend
    # limits: the organization's limit and alerts, the project pages, and per active
    # project its limit and its alerts.
    pages += 6 + 1 + 2 + max(1, math.ceil(len(projects) / 100))
    pages += 2 * len(projects)
    # audit_logs: a first refresh is its backfill, the generated history's pages.
    pages += max(1, math.ceil(len(org.audit_events()) / 100))
    for refresh in small_run["refreshes"]:
        assert refresh["all_collectors_requests"] == SMALL.minimum_requests + pages
        assert refresh["all_collectors_result"] == "success"


def test_the_naive_way_lists_the_same_keys_with_default_pages(small_run: dict[str, Any]) -> None:
    (naive,) = small_run["naive"]
    assert naive["keys"] == SMALL.keys
    assert naive["requests"] == naive["requests_seen"] == SMALL.requests(SDK_DEFAULT_LIMIT)


def test_a_scrape_storm_on_an_expired_cache_costs_one_refresh(small_run: dict[str, Any]) -> None:
    assert small_run["storm"] == {"requests": SMALL.minimum_requests, "answered": STORM}


def test_both_renderers_give_the_same_samples_in_both_formats(
    small_run: dict[str, Any],
) -> None:
    assert small_run["scrape"]["same_samples"] is True


def test_series_per_key_follow_from_the_organization(small_run: dict[str, Any]) -> None:
    org = build_organization(SMALL.spec())
    keys = [key for project in org.projects(include_archived=False) for key in org.keys(project.id)]
    used = sum(1 for key in keys if key.last_used_at is not None)
    # info, created, age, idle, never_used for every key; last_used for the used ones.
    assert small_run["scrape"]["series_per_key"] == (5 * len(keys) + used) / len(keys)
