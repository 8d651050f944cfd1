import random
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest

from exporter.upstream.retry import RetryPolicy, is_retryable_status, retry_after_seconds

NOW = 1_700_000_000.0


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503, 504])
def test_retries_what_the_official_sdk_retries(status: int) -> None:
    assert is_retryable_status(status)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_does_not_retry_client_errors(status: int) -> None:
    assert not is_retryable_status(status)


def test_retry_after_in_seconds() -> None:
    assert retry_after_seconds({"retry-after": "3"}, NOW) == 3.0


def test_retry_after_ms_wins_over_seconds() -> None:
    assert retry_after_seconds({"retry-after-ms": "250", "retry-after": "3"}, NOW) == 0.25


def test_retry_after_as_http_date() -> None:
    when = format_datetime(datetime.fromtimestamp(NOW + 7, UTC), usegmt=True)
    assert retry_after_seconds({"retry-after": when}, NOW) == pytest.approx(7.0)


@pytest.mark.parametrize("value", ["soon", ""])
def test_unreadable_retry_after_is_ignored(value: str) -> None:
    assert retry_after_seconds({"retry-after": value}, NOW) is None


def test_server_wish_is_capped() -> None:
    policy = RetryPolicy(max_retries=3, max_retry_after=60.0)
    assert policy.delay(0, {"retry-after": "3600"}, NOW, random.Random(1)) == 60.0


def test_backoff_doubles_from_half_a_second_to_eight_with_jitter() -> None:
    policy = RetryPolicy(max_retries=10)
    rng = random.Random(42)
    for retry_number, ceiling in enumerate([0.5, 1, 2, 4, 8, 8, 8]):
        delay = policy.backoff(retry_number, rng)
        assert 0.75 * ceiling <= delay <= ceiling
