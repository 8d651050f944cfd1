"""One refresh of one collector: the deadline, the timing, the report, the new state.

The runner is the same for every collector. It reads the admin key, lets the collector
fetch within ``--openai.refresh-timeout``, and turns what came back into the next
``ResourceState`` (or keeps the last good one) and a ``RefreshReport``:

- ``success``: the rows were built and nothing failed;
- ``partial``: the rows were built but some listing failed (their part keeps its last
  good rows, as the collector's merge decides);
- ``failure``: no rows could be built; the last good state stays.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from exporter.clock import Clocks
from exporter.collectors.base import AnyCollector, Attempt
from exporter.snapshot import Failure, RefreshReport, RefreshResult, ResourceState
from exporter.upstream.client import AdminApiClient
from exporter.upstream.errors import UpstreamError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunOutcome:
    state: ResourceState[Any] | None  # None: nothing usable, neither new nor from before
    report: RefreshReport


class CollectorRunner:
    def __init__(
        self,
        collector: AnyCollector,
        client_factory: Callable[[], AdminApiClient],
        *,
        deadline: float,
        clocks: Clocks,
        organization: str | None = None,
    ) -> None:
        self.collector = collector
        # Named in each line it logs when the exporter serves several organizations.
        self._where = f"collector {collector.name}" + (
            "" if organization is None else f", organization {organization}"
        )
        self._client_factory = client_factory
        self._deadline = deadline
        self._clocks = clocks

    @property
    def name(self) -> str:
        return self.collector.name

    async def run(self, previous: ResourceState[Any] | None) -> RunOutcome:
        collector = self.collector
        started_at = self._clocks.wall()
        begun = self._clocks.monotonic()
        attempt: Attempt[Any] = Attempt(
            None if previous is None else previous.rows, started_at=started_at
        )
        try:
            client = self._client_factory()
            async with asyncio.timeout(self._deadline):
                await collector.fetch(client, attempt)
        except UpstreamError as error:
            attempt.errors.append(error)
        except TimeoutError:
            attempt.errors.append(
                UpstreamError(
                    "timeout",
                    f"the refresh did not finish within its deadline of {self._deadline:g}s",
                    endpoint=collector.endpoints[-1 if attempt.build else 0],
                )
            )
        duration = self._clocks.monotonic() - begun
        failures = tuple(self._failure(error) for error in attempt.errors)
        if attempt.build is None:
            report = RefreshReport(collector.name, "failure", started_at, duration, failures)
            return RunOutcome(previous, report)
        rows, attempt.build = attempt.build(), None  # the listing's progress can go now
        state = ResourceState(rows, started_at + duration, complete=not failures)
        result: RefreshResult = "partial" if failures else "success"
        return RunOutcome(
            state, RefreshReport(collector.name, result, started_at, duration, failures)
        )

    def _failure(self, error: UpstreamError) -> Failure:
        # Only the text is kept until the next refresh: the exception's traceback would
        # hold this refresh's pages and response bodies alive until then.
        error.endpoint = error.endpoint or self.collector.endpoints[0]
        failure = Failure(error.reason, str(error))
        log.warning("%s (%s)", failure.text, self._where)
        return failure
