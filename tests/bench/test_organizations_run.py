"""A small run of the several-organizations benchmark, asserting exact facts only."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bench.organizations import SIZE, measure_organizations
from bench.plan import Plan

pytestmark = pytest.mark.slow  # two exporter processes and a few real seconds

COUNT = 3


@pytest.fixture(scope="module")
def run() -> dict[str, Any]:
    plan = Plan(
        sizes=(),
        parts=frozenset({"organizations"}),
        latency=0.01,
        concurrency=4,
        refresh_runs=1,
        naive_runs=1,
        scrape_runs=1,
        baseline_runs=1,
        http_scrapes=1,
        plain_scrapes=1,
        storm_scrapes=1,
    )
    return asyncio.run(measure_organizations(plan, count=COUNT))


def test_every_organization_refreshed_once_with_the_minimum_requests(run: dict[str, Any]) -> None:
    assert len(run["refresh_seconds"]) == COUNT
    assert run["requests"] == COUNT * SIZE.minimum_requests


def test_requests_in_flight_stay_within_the_shared_bound(run: dict[str, Any]) -> None:
    # Three organizations fit the bound of four: each its own 1 + (1 + concurrency).
    assert run["bound"] == 4 * (1 + 1 + 4)
    assert run["most_in_flight"] <= run["bound"]
