"""Spend per project, key and line item: ``GET /organization/costs``, counted exactly once.

Costs come in daily buckets (the only width the endpoint has) and settle late, a day or
more. Each poll (``--costs.interval``, default 1h) reads, in one page, the daily buckets
of ``--costs.lookback`` (default 3d) grouped by project_id, line_item and api_key_id,
and, when the month (UTC) began before the lookback, the month's earlier days in a
second page grouped by project_id only (per key they would be thousands of results a
day, for a gauge that needs projects). The metrics stay apart:

- ``openai_cost_usd_total`` counts the buckets of the lookback only, through the
  ``BucketLedger`` (growth of each bucket, once);
- the month-to-date gauges sum this month's buckets as they stand now, from both.

Amounts are exact decimals: ``amount.value`` is a JSON number in the spec and
sometimes a string ("12.50") in practice; both are read. A null grouping field (a
cost attributed to no key, or to no project) becomes an empty label value.

Example exposition::

    openai_cost_usd_total{project_id="proj_a",api_key_id="key_1",line_item="gpt-4o, input"} 12.5
    openai_project_spend_month_to_date_usd{project_id="proj_a"} 310.25
    openai_organization_spend_month_to_date_usd 1204.5
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from pydantic import Field

from exporter.collectors.base import Attempt, Collector, Family, Samples
from exporter.collectors.ledger import (
    BucketLedger,
    SeriesKey,
    add_observed,
    bucket_count,
    log_shrinks,
    window_start,
)
from exporter.snapshot import Snapshot
from exporter.upstream.client import AdminApiClient
from exporter.upstream.lister import TokenEndpoint, list_token_pages
from exporter.upstream.models import Timestamp, Wire

DAY = 86400
MAX_BUCKETS = 180  # the endpoint's limit of daily buckets
ZERO = (Decimal(0),)


class ApiAmount(Wire):
    value: Decimal = Field(allow_inf_nan=False)  # a number, or a string such as "12.50"
    currency: str | None = None


class CostResult(Wire):
    amount: ApiAmount
    line_item: str | None = None
    project_id: str | None = None
    api_key_id: str | None = None


class CostBucket(Wire):
    start_time: Timestamp
    end_time: Timestamp
    results: tuple[CostResult, ...]


COSTS = TokenEndpoint(
    "costs",
    "/organization/costs",
    CostBucket,
    query=(("bucket_width", "1d"),),
    permission="read access to the organization's costs (the Usage API)",
)
BY_KEY = (("group_by", "project_id"), ("group_by", "line_item"), ("group_by", "api_key_id"))
BY_PROJECT = (("group_by", "project_id"),)

COST_LABELS = ("project_id", "api_key_id", "line_item")
COST = Family(
    "openai_cost_usd",
    "Cost in US dollars per project, API key and line item, counted from the daily cost "
    "buckets of the lookback window as they settle; api_key_id is empty for costs the API "
    "attributes to no key.",
    COST_LABELS,
    type="counter",
)
PROJECT_MONTH = Family(
    "openai_project_spend_month_to_date_usd",
    "The project's spend this calendar month (UTC) so far, in US dollars, summed from the "
    "daily cost buckets.",
    ("project_id",),
)
ORGANIZATION_MONTH = Family(
    "openai_organization_spend_month_to_date_usd",
    "The organization's spend this calendar month (UTC) so far, in US dollars.",
)


@dataclass(frozen=True, slots=True)
class Costs:
    ledger: BucketLedger[Decimal]
    month_by_project: Mapping[str, Decimal]  # "" holds the costs of no project
    month_start: int

    def __len__(self) -> int:
        return len(self.ledger)


def month_start(now: float) -> int:
    """Unix time of 00:00 UTC on the first day of ``now``'s month."""
    moment = datetime.fromtimestamp(now, UTC)
    return int(moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0).timestamp())


class CostsCollector(Collector[Costs]):
    name = "costs"
    endpoints = (COSTS.name,)
    families = (COST, PROJECT_MONTH, ORGANIZATION_MONTH)

    async def fetch(self, client: AdminApiClient, attempt: Attempt[Costs]) -> None:
        now = attempt.started_at
        counted_from = window_start(now, self.options.costs_lookback, DAY)
        month = month_start(now)
        by_project: dict[str, Decimal] = {}
        observed: dict[SeriesKey, dict[int, tuple[Decimal, ...]]] = {}

        async def lookback() -> None:
            limit = min(MAX_BUCKETS, bucket_count(now, counted_from, DAY))
            query = [("start_time", str(counted_from)), *BY_KEY]
            async for buckets in list_token_pages(client, COSTS, limit=limit, query=query):
                for bucket in buckets:
                    for result in bucket.results:
                        project = result.project_id or ""
                        amount = result.amount.value
                        if bucket.start_time >= month:
                            by_project[project] = by_project.get(project, ZERO[0]) + amount
                        key = (project, result.api_key_id or "", result.line_item or "")
                        add_observed(observed, key, bucket.start_time, (amount,))

        async def month_before_lookback() -> None:
            days = (counted_from - month) // DAY
            query = [("start_time", str(month)), ("end_time", str(counted_from)), *BY_PROJECT]
            async for buckets in list_token_pages(client, COSTS, limit=days, query=query):
                for bucket in buckets:
                    if not month <= bucket.start_time < counted_from:
                        continue  # the lookback's own days are summed from its listing
                    for result in bucket.results:
                        project = result.project_id or ""
                        by_project[project] = by_project.get(project, ZERO[0]) + result.amount.value

        parts = [lookback()]
        if month < counted_from:
            parts.append(month_before_lookback())
        await asyncio.gather(*parts)
        before = attempt.previous.ledger if attempt.previous else BucketLedger(ZERO)
        ledger, shrinks = before.advance(observed, window_start=counted_from)
        log_shrinks(shrinks, "costs")
        rows = Costs(ledger, by_project, month)
        attempt.build = lambda: rows

    def samples(self, rows: Costs, snapshot: Snapshot) -> Iterable[tuple[Family, Samples]]:
        yield COST, ((key, float(totals[0])) for key, totals in rows.ledger.totals())
        months = rows.month_by_project
        yield PROJECT_MONTH, (((pid,), float(usd)) for pid, usd in months.items() if pid)
        yield ORGANIZATION_MONTH, [((), float(sum(months.values(), Decimal(0))))]

    def max_in_flight(self) -> int:
        return 2  # the lookback, and the month's earlier days

    def summary(self, rows: Costs) -> str:
        return f"{len(rows)} cost series"
