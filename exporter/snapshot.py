"""Snapshots: plain immutable data, the only thing the caches hold and the renderer reads.

Each collector's refresh produces a ``ResourceState`` (its rows, when they were taken,
whether complete); a ``Snapshot`` is the set of every enabled collector's last good
state at one scrape. Nothing here is ever mutated, so a scrape can render a snapshot
from any thread while the next refresh is being built. This module imports nothing of
the exporter's: everything may import it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Generic, Literal, TypeVar, get_args

RowsT = TypeVar("RowsT")

RefreshResult = Literal["success", "partial", "failure"]
REFRESH_RESULTS: tuple[RefreshResult, ...] = get_args(RefreshResult)


@dataclass(frozen=True, slots=True)
class ResourceState(Generic[RowsT]):
    """One collector's rows as of ``taken_at`` (unix seconds).

    ``complete`` is False after a partial refresh: some rows are then the last good
    ones of an earlier refresh (a project whose keys could not be listed this time).
    """

    rows: RowsT
    taken_at: float
    complete: bool = True


@dataclass(frozen=True, slots=True)
class Failure:
    """One listing that failed for good, as health metrics and the landing page show it."""

    reason: str  # one of exporter.upstream.errors.ERROR_REASONS
    text: str  # the whole message, never holding the admin key


@dataclass(frozen=True, slots=True)
class RefreshReport:
    """What one collector's last refresh did."""

    collector: str
    result: RefreshResult
    started_at: float
    duration: float
    failures: tuple[Failure, ...] = ()

    @property
    def ended_at(self) -> float:
        return self.started_at + self.duration


class Snapshot(Mapping[str, ResourceState[Any]]):
    """Every enabled collector's last good state, by collector name; a collector that
    has no good state yet is absent."""

    __slots__ = ("_states",)

    def __init__(self, states: Mapping[str, ResourceState[Any]] | None = None) -> None:
        self._states = MappingProxyType(dict(states or {}))

    def __getitem__(self, name: str) -> ResourceState[Any]:
        return self._states[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._states)

    def __len__(self) -> int:
        return len(self._states)
