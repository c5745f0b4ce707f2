from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from otel_tracker.cli.main import main
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


@pytest.mark.parametrize(
    "text",
    [
        "99999999d",
        "9" * 400 + "w",
        "1" + "0" * 30 + "s",
        "0001-01-01",
        "0001-01-01T00:00:00+01:00",
        "9999-12-31",
        "9999-12-31T23:59:59-01:00",
        "10000-01-01",
        "2026-02-30",
        "2026-11-20T25:00",
        "\x00",
        "1e309d",
        "today\x1b[2J",
    ],
)
def test_any_time_input_is_a_time_or_one_clear_error(text: str) -> None:
    """Whatever a user types after --since/--until: a date with a Unix time, or a
    one-line error; never an OverflowError from date arithmetic."""
    for now in (
        NOW,
        datetime(1, 1, 2, tzinfo=timezone.utc),
        datetime(9999, 12, 30, tzinfo=timezone.utc),
    ):
        try:
            when = parse_when(text, now)
        except OtelTrackerError as exc:
            assert str(exc).startswith(("bad date", "bad duration")), exc
        else:
            assert isinstance(when.timestamp(), float)


def test_list_with_an_out_of_range_time_is_one_line(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for args in (["--since", "99999999d"], ["--until", "0001-01-01"], ["--since", "9" * 40 + "d"]):
        code = main(["--root", str(root), "list", *args])
        _, err = capsys.readouterr()
        assert code == 2 and err.startswith("otel-tracker: error: bad ") and err.count("\n") == 1
