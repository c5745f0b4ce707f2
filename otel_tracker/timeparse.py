"""Parsing and printing times for the reading side: ``2d``, ``2026-11-20``, ``1h 05m``."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from .errors import OtelTrackerError

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$", re.IGNORECASE)
_UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
MAX_DURATION_S = 10_000 * 365.25 * 86400


def parse_duration(text: str) -> float:
    """Seconds in ``90``, ``90s``, ``15m``, ``2h``, ``2d`` or ``1w``."""
    match = _DURATION.match(text)
    if not match:
        raise OtelTrackerError(f"bad duration {text!r}: use e.g. 90s, 15m, 2h, 2d or 1w")
    seconds = float(match.group(1)) * _UNIT_S[match.group(2).lower()]
    if seconds > MAX_DURATION_S:  # also inf: 400 nines are a valid number
        raise OtelTrackerError(f"bad duration {text[:40]!r}: longer than 10,000 years")
    return seconds


def parse_when(text: str, now: datetime | None = None) -> datetime:
    """An aware UTC datetime from ``2d`` (ago), ``today``, ``yesterday`` or an ISO date/time.

    A date or time without a zone is local time, as a user at a terminal means it.
    Whatever the text, the result is a date with a Unix time, or one-line
    :class:`OtelTrackerError`: never an overflow from ``99999999d`` or ``9999-12-31``.
    """
    try:
        when = _parse_when(text, now or datetime.now(timezone.utc))
        when.timestamp()  # representable, too
    except (OverflowError, ValueError, OSError):
        raise OtelTrackerError(
            f"bad date {text[:40]!r}: out of the range of dates (years 1 to 9999)"
        ) from None
    return when


def _parse_when(text: str, now: datetime) -> datetime:
    value = text.strip()
    lowered = value.lower()
    if lowered in ("today", "yesterday"):
        local_midnight = now.astimezone().replace(hour=0, minute=0, second=0, microsecond=0)
        if lowered == "yesterday":
            local_midnight -= timedelta(days=1)
        return local_midnight.astimezone(timezone.utc)
    if _DURATION.match(value) and not value.strip().isdigit():
        return now - timedelta(seconds=parse_duration(value))
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise OtelTrackerError(
            f"bad date {text!r}: use e.g. 2d, 12h, today, 2026-11-20 or 2026-11-20T08:30"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.astimezone()  # local time
    return parsed.astimezone(timezone.utc)


def parse_timestamp(value: object) -> float | None:
    """Unix seconds of a manifest timestamp (``...Z``); ``None`` if absent or malformed."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def format_duration(seconds: float | None, *, compact: bool = False) -> str:
    """``0.4s``, ``42s``, ``3m 07s``, ``2h 05m``, ``3d 04h``; ``-`` when unknown.

    ``compact`` rounds to the largest unit for lines people scan: ``45s``, ``11m``.
    """
    if seconds is None:
        return "-"
    s = max(0.0, float(seconds))
    if compact:
        if s < 59.5:
            return f"{round(s)}s"
        minutes = round(s / 60)
        return f"{minutes}m" if minutes < 60 else _hours_and_days(minutes)
    if s < 10:
        return f"{s:.1f}s"
    if s < 60:
        return f"{s:.0f}s"
    minutes, sec = divmod(round(s), 60)
    return f"{minutes}m {sec:02d}s" if minutes < 60 else _hours_and_days(minutes)


def _hours_and_days(minutes: int) -> str:
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours:02d}h"


def format_local(value: object) -> str:
    """A manifest timestamp as local ``YYYY-MM-DD HH:MM:SS``; ``-`` when unknown."""
    ts = parse_timestamp(value)
    if ts is None:
        return "-"
    try:
        return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")
    except (OverflowError, ValueError, OSError):  # year 1 or 9999 shifted out of range
        return str(value)
