from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from otel_tracker.errors import OtelTrackerError
from otel_tracker.timeparse import format_duration, parse_duration, parse_timestamp, parse_when

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90", 90),
        ("90s", 90),
        ("15m", 900),
        ("2h", 7200),
        ("2d", 172800),
        ("1w", 604800),
        ("1.5h", 5400),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_relative_and_absolute_dates() -> None:
    assert parse_when("2d", NOW) == NOW - timedelta(days=2)
    assert parse_when("2026-11-20T08:30:00Z", NOW) == datetime(
        2026, 11, 20, 8, 30, tzinfo=timezone.utc
    )
    local = parse_when("2026-11-20", NOW)
    assert local == datetime(2026, 11, 20).astimezone().astimezone(timezone.utc)
    assert parse_when("yesterday", NOW) < parse_when("today", NOW) <= NOW


@pytest.mark.parametrize("bad", ["lastweek", "2x", "", "11/20/2026"])
def test_bad_dates_are_one_clear_error(bad: str) -> None:
    with pytest.raises(OtelTrackerError, match="bad date"):
        parse_when(bad, NOW)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "-"),
        (0.42, "0.4s"),
        (42, "42s"),
        (187, "3m 07s"),
        (7500, "2h 05m"),
        (273600, "3d 04h"),
    ],
)
def test_format_duration(seconds: float | None, text: str) -> None:
    assert format_duration(seconds) == text


def test_parse_timestamp() -> None:
    assert parse_timestamp("2026-11-23T12:00:00.000000Z") == NOW.timestamp()
    assert parse_timestamp("garbage") is None
    assert parse_timestamp(None) is None
