import pytest

from exporter.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("300", 300.0),
        ("2.5", 2.5),
        ("5m", 300.0),
        ("1h30m", 5400.0),
        ("500ms", 0.5),
        ("1d", 86400.0),
        (" 10s ", 10.0),
    ],
)
def test_accepts_seconds_and_prometheus_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5x", "m5", "5m junk", "-5", "1h 30m", "five"])
def test_rejects_anything_else_with_a_hint(text: str) -> None:
    with pytest.raises(ValueError, match="Prometheus duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("seconds", "text"), [(300.0, "5m"), (3600.0, "1h"), (45.0, "45s"), (0.5, "0.5s")]
)
def test_formats_for_help_texts(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
