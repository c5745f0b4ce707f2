"""Thinning a chart's points on the server: min and max per pixel bucket.

A 24-hour run sampled every 5 s has about 17,000 points per series; a chart 800
pixels wide can show at most two values per pixel column (the lowest and the
highest line it draws there). So the time axis is cut into ``buckets`` equal
spans and each series keeps, per span, its minimum and its maximum in the order
they happened: the envelope the browser would have drawn from every point, with
spikes kept (an average or every-n-th point would hide a one-sample spike; LTTB
keeps one point per bucket and may drop either extreme). All series share one
time axis, as uPlot wants: each bucket contributes two x values (its first and
last sample time) and each series puts its earlier extreme at the first and its
later extreme at the second.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

Value = float | None


def min_max_buckets(
    times: Sequence[float], series: dict[str, Sequence[Value]], buckets: int
) -> tuple[list[float], dict[str, list[Value]]]:
    """``times`` (ascending) and each series (same length; ``None`` for a gap)
    thinned to at most ``2 * buckets`` points; unchanged when already that small."""
    count = len(times)
    if buckets < 1:
        raise ValueError("buckets must be at least 1")
    if count <= 2 * buckets:
        return list(times), {key: list(values) for key, values in series.items()}
    start, end = times[0], times[-1]
    span = (end - start) / buckets or 1.0
    # the index where each bucket starts: one pass over the times
    bounds = [0]
    for index, at in enumerate(times):
        while len(bounds) < buckets and at >= start + span * len(bounds):
            bounds.append(index)
    bounds.append(count)
    out_times: list[float] = []
    spans = [(a, b) for a, b in itertools.pairwise(bounds) if b > a]
    for a, b in spans:
        out_times.append(times[a])
        out_times.append(times[b - 1] if b - 1 > a else times[a] + 1e-6)
    out: dict[str, list[Value]] = {}
    for key, values in series.items():
        column: list[Value] = []
        for a, b in spans:
            low = high = None
            low_at = high_at = a
            for index in range(a, b):
                value = values[index]
                if value is None or not math.isfinite(value):
                    continue
                if low is None or value < low:
                    low, low_at = value, index
                if high is None or value > high:
                    high, high_at = value, index
            if low_at <= high_at:
                column += [low, high]
            else:
                column += [high, low]
        out[key] = column
    return out_times, out
