"""What a collector is: one upstream resource, its listing, its rows and its families.

A collector module declares, once, its endpoint(s) (``exporter.upstream.lister``), its
response model, its row records and its metric ``Family`` declarations (name, help,
type and labels). It implements two things:

- ``fetch``: list the resource with the client and hand the runner a way to build the
  rows (``Attempt.build``), plus any listing that failed (``Attempt.errors``);
- ``samples``: the rows as (family, label values, value) for the renderer.

Runner, caches and renderer are generic: adding a resource is one module here, one
line in ``exporter.collectors.REGISTRY`` and one in ``catalog.COLLECTOR_DEFAULTS``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sized
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, Literal, TypeVar

from exporter.snapshot import Snapshot
from exporter.upstream.client import AdminApiClient
from exporter.upstream.errors import UpstreamError

RowsT = TypeVar("RowsT")

FamilyType = Literal["gauge", "counter"]
LabelValues = tuple[str, ...]
Number = int | float


@dataclass(frozen=True)
class Family:
    """One metric family. ``labels`` are written here once; samples give values only.

    ``since`` families hold seconds since a timestamp (ages, idle times): a collector
    gives the timestamp and the renderer computes ``now - timestamp`` at each scrape,
    in whole seconds and never below zero. A ``counter`` is named without ``_total``;
    its samples are exposed with it.
    """

    name: str
    help: str
    labels: tuple[str, ...] = ()
    type: FamilyType = "gauge"
    since: bool = False

    def __post_init__(self) -> None:
        if self.since and self.type != "gauge":
            raise ValueError(f"{self.name}: only a gauge can be computed since a timestamp")
        if self.type == "counter" and self.name.endswith("_total"):
            raise ValueError(f"{self.name}: declare a counter without _total")


Samples = Iterable[tuple[LabelValues, Number]]


@dataclass(frozen=True)
class Options:
    """What collectors may be configured with (plain values, not the Settings)."""

    include_archived: bool = False
    project_filter: Callable[[str, str], bool] = field(default=lambda _id, _name: True)
    concurrency: int = 8
    emails: bool = False  # the *_email labels
    usage_lookback: float = 3 * 3600.0  # seconds of hourly usage buckets each poll re-reads
    usage_group_by: tuple[str, ...] = ("project_id", "api_key_id", "model")
    costs_lookback: float = 3 * 86400.0  # seconds of daily cost buckets each poll re-reads
    audit_overlap: float = 600.0  # seconds below the newest audit event each poll re-reads
    audit_backfill: float = 7 * 86400.0  # seconds of audit history the first poll learns from
    audit_backfill_max_pages: int = 100  # the first poll's page bound
    audit_log_events: bool = False  # each newly counted audit event as a JSON line
    audit_log_personal_data: bool = False  # emails and IP addresses in those lines


@dataclass
class Attempt(Generic[RowsT]):
    """What a fetch has gathered so far; the runner keeps it when the deadline cuts the
    fetch short. ``build`` stays None until the rows can be built at all (a listing
    that failed before that keeps the collector's last good rows). ``started_at`` is the
    wall-clock time the refresh began (the windows of usage and costs end there)."""

    previous: RowsT | None
    started_at: float = 0.0
    errors: list[UpstreamError] = field(default_factory=list)
    build: Callable[[], RowsT] | None = None


class Collector(ABC, Generic[RowsT]):
    """One upstream resource. Subclasses set the class attributes and two methods."""

    name: ClassVar[str]  # as in catalog.COLLECTOR_DEFAULTS
    endpoints: ClassVar[tuple[str, ...]]  # every endpoint label it requests
    families: ClassVar[tuple[Family, ...]]  # in exposition order
    # Other collectors whose rows ``samples`` joins (its text is rebuilt when theirs change).
    reads: ClassVar[tuple[str, ...]] = ()
    # Whether its failures make openai_up 0 (its own success gauge shows them either way).
    in_up: ClassVar[bool] = True

    def __init__(self, options: Options) -> None:
        self.options = options

    @abstractmethod
    async def fetch(self, client: AdminApiClient, attempt: Attempt[RowsT]) -> None:
        """List the resource; set ``attempt.build``, append what failed to ``attempt.errors``.
        An ``UpstreamError`` raised here is a failed refresh that keeps the last good rows."""

    @abstractmethod
    def samples(self, rows: RowsT, snapshot: Snapshot) -> Iterable[tuple[Family, Samples]]:
        """The rows' samples, family by family (each family at most once)."""

    def max_in_flight(self) -> int:
        """Requests this collector can have in flight at once (one listing at a time,
        unless it lists per project): what the connection pool is sized for."""
        return 1

    def summary(self, rows: RowsT) -> str:
        """A few words on the rows, for the landing page."""
        return f"{len(rows)} listed" if isinstance(rows, Sized) else "listed"


AnyCollector = Collector[Any]
