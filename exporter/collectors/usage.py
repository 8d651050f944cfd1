"""Usage of every key and model: ``GET /organization/usage/{source}``, counted exactly once.

Each poll (``--usage.interval``, default 5m) re-reads, for each of the six sources,
the hourly buckets of the trailing ``--usage.lookback`` (default 3h) in one page
(``limit`` = the window's buckets, at most 168), grouped by ``--usage.group-by``
(project_id, api_key_id, model). The ``BucketLedger`` turns the re-read buckets into
counters that add only the growth. A source whose poll fails keeps its counters and
its window as they were; the next good poll counts what arrived meanwhile.

Hourly buckets: the alerts and panels look at the last hour, the open bucket grows as
requests come in, and the window stays a few buckets per series (memory is bounded by
series times buckets in the window).

Example exposition::

    openai_usage_requests_total{project_id="proj_a",api_key_id="key_1",model="gpt-4o",
                                source="completions"} 1520
    openai_usage_input_tokens_total{...,source="completions"} 2.1e6
    openai_usage_images_total{project_id="proj_a",api_key_id="key_1",model="gpt-image-1"} 12
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import Field

from exporter.collectors.base import Attempt, Collector, Family, Samples
from exporter.collectors.ledger import (
    BucketLedger,
    Observed,
    SeriesKey,
    add_observed,
    bucket_count,
    log_shrinks,
    window_start,
)
from exporter.snapshot import Snapshot
from exporter.upstream.client import AdminApiClient, Query
from exporter.upstream.errors import UpstreamError
from exporter.upstream.lister import TokenEndpoint, list_token_pages
from exporter.upstream.models import Timestamp, Wire

BUCKET_WIDTH = 3600  # seconds: bucket_width=1h
MAX_BUCKETS = 168  # the API's limit for 1h buckets
DIMENSIONS = ("project_id", "api_key_id", "model")


class UsageResult(Wire):
    """What every usage result has; a field not grouped by is null."""

    num_model_requests: int = Field(ge=0)
    project_id: str | None = None
    api_key_id: str | None = None
    model: str | None = None


class CompletionsResult(UsageResult):
    input_tokens: int = Field(ge=0)  # cached and cache-write tokens included, as the API counts
    output_tokens: int = Field(ge=0)
    input_cached_tokens: int = Field(default=0, ge=0)


class TokensResult(UsageResult):
    """Embeddings and moderations."""

    input_tokens: int = Field(ge=0)


class ImagesResult(UsageResult):
    images: int = Field(ge=0)


class AudioSpeechesResult(UsageResult):
    characters: int = Field(ge=0)


class AudioTranscriptionsResult(UsageResult):
    seconds: int = Field(ge=0)


ResultT = TypeVar("ResultT", bound=UsageResult)


class UsageBucket(Wire, Generic[ResultT]):
    start_time: Timestamp
    end_time: Timestamp
    results: tuple[ResultT, ...]


# Concrete per source: pydantic validates each bucket's results as that source's model.
CompletionsBucket = UsageBucket[CompletionsResult]
TokensBucket = UsageBucket[TokensResult]
ImagesBucket = UsageBucket[ImagesResult]
AudioSpeechesBucket = UsageBucket[AudioSpeechesResult]
AudioTranscriptionsBucket = UsageBucket[AudioTranscriptionsResult]


SERIES = ("project_id", "api_key_id", "model")
WITH_SOURCE = (*SERIES, "source")
REQUESTS = Family(
    "openai_usage_requests",
    "Model requests per project, API key and model; source is the usage endpoint "
    "(completions, embeddings, ...). Counted from hourly buckets as they grow.",
    WITH_SOURCE,
    type="counter",
)
INPUT_TOKENS = Family(
    "openai_usage_input_tokens",
    "Input tokens (for completions cached tokens included, as the API counts them).",
    WITH_SOURCE,
    type="counter",
)
CACHED_INPUT_TOKENS = Family(
    "openai_usage_cached_input_tokens",
    "Cached input tokens of completions (also counted in the input tokens).",
    WITH_SOURCE,
    type="counter",
)
OUTPUT_TOKENS = Family(
    "openai_usage_output_tokens", "Output tokens of completions.", WITH_SOURCE, type="counter"
)
IMAGES = Family("openai_usage_images", "Images generated.", SERIES, type="counter")
CHARACTERS = Family(
    "openai_usage_characters", "Characters synthesized to speech.", SERIES, type="counter"
)
AUDIO_SECONDS = Family(
    "openai_usage_audio_seconds", "Seconds of audio transcribed.", SERIES, type="counter"
)
FAMILIES = (
    REQUESTS,
    INPUT_TOKENS,
    CACHED_INPUT_TOKENS,
    OUTPUT_TOKENS,
    IMAGES,
    CHARACTERS,
    AUDIO_SECONDS,
)


@dataclass(frozen=True)
class Source(Generic[ResultT]):
    """One usage endpoint: its name (the ``source`` label), its families and values."""

    name: str
    bucket: type[UsageBucket[ResultT]]
    measures: tuple[Family, ...]  # the families its values feed, in value order
    values: Callable[[ResultT], tuple[int, ...]]

    @property
    def endpoint(self) -> TokenEndpoint[UsageBucket[ResultT]]:
        return TokenEndpoint(
            f"usage_{self.name}",
            f"/organization/usage/{self.name}",
            self.bucket,
            permission="read access to the organization's usage (the Usage API)",
        )


def _tokens(result: TokensResult) -> tuple[int, ...]:
    return result.num_model_requests, result.input_tokens


SOURCES: tuple[Source[Any], ...] = (
    Source(
        "completions",
        CompletionsBucket,
        (REQUESTS, INPUT_TOKENS, CACHED_INPUT_TOKENS, OUTPUT_TOKENS),
        lambda r: (r.num_model_requests, r.input_tokens, r.input_cached_tokens, r.output_tokens),
    ),
    Source("embeddings", TokensBucket, (REQUESTS, INPUT_TOKENS), _tokens),
    Source("moderations", TokensBucket, (REQUESTS, INPUT_TOKENS), _tokens),
    Source("images", ImagesBucket, (REQUESTS, IMAGES), lambda r: (r.num_model_requests, r.images)),
    Source(
        "audio_speeches",
        AudioSpeechesBucket,
        (REQUESTS, CHARACTERS),
        lambda r: (r.num_model_requests, r.characters),
    ),
    Source(
        "audio_transcriptions",
        AudioTranscriptionsBucket,
        (REQUESTS, AUDIO_SECONDS),
        lambda r: (r.num_model_requests, r.seconds),
    ),
)
ENDPOINTS = {source.name: source.endpoint for source in SOURCES}


@dataclass(frozen=True, slots=True)
class Usage:
    """Each source's ledger; a source never polled successfully is left out."""

    ledgers: Mapping[str, BucketLedger[int]]

    def __len__(self) -> int:
        return sum(len(ledger) for ledger in self.ledgers.values())


class UsageCollector(Collector[Usage]):
    name = "usage"
    endpoints = tuple(endpoint.name for endpoint in ENDPOINTS.values())
    families = FAMILIES

    async def fetch(self, client: AdminApiClient, attempt: Attempt[Usage]) -> None:
        start = window_start(attempt.started_at, self.options.usage_lookback, BUCKET_WIDTH)
        limit = min(MAX_BUCKETS, bucket_count(attempt.started_at, start, BUCKET_WIDTH))
        grouped = tuple(d for d in DIMENSIONS if d in self.options.usage_group_by)
        query: Query = [
            ("start_time", str(start)),
            ("bucket_width", "1h"),
            *(("group_by", dimension) for dimension in grouped),
        ]
        ledgers = dict(attempt.previous.ledgers) if attempt.previous else {}

        async def poll(source: Source[Any]) -> None:
            try:
                observed = await _observe(client, source, limit, query, grouped)
            except UpstreamError as error:
                attempt.errors.append(error)
                return
            before = ledgers.get(source.name) or BucketLedger((0,) * len(source.measures))
            ledgers[source.name], shrinks = before.advance(observed, window_start=start)
            log_shrinks(shrinks, f"usage/{source.name}")
            attempt.build = lambda: Usage(dict(ledgers))

        await asyncio.gather(*(poll(source) for source in SOURCES))

    def samples(self, rows: Usage, snapshot: Snapshot) -> Iterable[tuple[Family, Samples]]:
        for family in FAMILIES:
            yield family, _family_samples(rows, family)

    def max_in_flight(self) -> int:
        return len(SOURCES)

    def summary(self, rows: Usage) -> str:
        return f"{len(rows)} usage series from {len(rows.ledgers)} sources"


def _family_samples(rows: Usage, family: Family) -> Iterator[tuple[tuple[str, ...], int]]:
    with_source = family.labels == WITH_SOURCE
    for source in SOURCES:
        ledger = rows.ledgers.get(source.name)
        if ledger is None or family not in source.measures:
            continue
        index = source.measures.index(family)
        for key, totals in ledger.totals():
            yield ((*key, source.name) if with_source else key), totals[index]


async def _observe(
    client: AdminApiClient,
    source: Source[Any],
    limit: int,
    query: Query,
    grouped: tuple[str, ...],
) -> Observed[int]:
    """One source's window, every page summed per (series, bucket)."""
    observed: dict[SeriesKey, dict[int, tuple[int, ...]]] = {}
    by_project, by_key, by_model = (d in grouped for d in DIMENSIONS)
    async for buckets in list_token_pages(client, ENDPOINTS[source.name], limit=limit, query=query):
        for bucket in buckets:
            for result in bucket.results:
                key = (
                    (result.project_id or "") if by_project else "",
                    (result.api_key_id or "") if by_key else "",
                    (result.model or "") if by_model else "",
                )
                add_observed(observed, key, bucket.start_time, source.values(result))
    return observed
