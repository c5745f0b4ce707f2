"""A scenario's latency histogram as a small, self-contained SVG (plain strings,
no plotting library): one bar per bin (``class="bar"``, ``data-count``), the
x axis in milliseconds, the y axis in calls, and the baseline's median latency as
a dashed line when it is known.

Bins follow the Freedman–Diaconis rule (width ``2 * IQR / n^(1/3)``), Sturges'
count where the IQR is 0, between 1 and 40 bins; equal values are one bin.
"""

from __future__ import annotations

import math
from html import escape

from .compare import percentile

MAX_BINS = 40
WIDTH, HEIGHT = 520, 260
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 34, 46


def bins(values: list[float]) -> list[tuple[float, float, int]]:
    """``(low, high, count)`` per bin; every value is in exactly one bin."""
    if not values:
        return []
    low, high = min(values), max(values)
    n = len(values)
    if high <= low:
        return [(low, high, n)]
    iqr = percentile(values, 75) - percentile(values, 25)
    if iqr > 0:
        count = math.ceil((high - low) / (2 * iqr / n ** (1 / 3)))
    else:
        count = math.ceil(math.log2(n) + 1)
    count = max(1, min(MAX_BINS, count))
    width = (high - low) / count
    counts = [0] * count
    for v in values:
        counts[min(count - 1, int((v - low) / width))] += 1  # the top value: last bin
    return [(low + i * width, low + (i + 1) * width, c) for i, c in enumerate(counts)]


def _num(value: float) -> str:
    from ..analysis.findings import format_number

    return format_number(value)


def latency_svg(title: str, values_ms: list[float], baseline_ms: float | None = None) -> str:
    """The SVG document of one scenario's measured latencies."""
    found = bins(values_ms)
    lo = min([b[0] for b in found] + ([baseline_ms] if baseline_ms is not None else []))
    hi = max([b[1] for b in found] + ([baseline_ms] if baseline_ms is not None else []))
    if hi <= lo:  # one value (or all equal): a bar of 1% of it either side
        pad = abs(lo) * 0.01 or 0.001
        lo, hi = lo - pad, hi + pad
    top = max([b[2] for b in found], default=1)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(v: float) -> float:
        return LEFT + (v - lo) / (hi - lo) * plot_w

    def y(count: float) -> float:
        return TOP + plot_h - count / top * plot_h

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="11">',
        f"<title>{escape(title)}</title>",
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
        f'<text x="{WIDTH / 2:.1f}" y="18" text-anchor="middle" font-size="13">'
        f"{escape(title)}</text>",
    ]
    for low, high, count in found:
        left, right = x(low), x(high) if high > low else x(low) + plot_w / 50
        parts.append(
            f'<rect class="bar" data-count="{count}" x="{left:.2f}" y="{y(count):.2f}" '
            f'width="{max(right - left - 1, 1):.2f}" height="{plot_h - (y(count) - TOP):.2f}" '
            f'fill="#4878a8"><title>{escape(f"{_num(low)}–{_num(high)} ms: {count} calls")}'
            "</title></rect>"
        )
    base_y = TOP + plot_h
    parts += [
        f'<line x1="{LEFT}" y1="{base_y}" x2="{LEFT + plot_w}" y2="{base_y}" stroke="black"/>',
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{base_y}" stroke="black"/>',
    ]
    for i in range(5):  # x ticks: five evenly spaced values
        v = lo + (hi - lo) * i / 4
        parts.append(
            f'<text class="x-tick" x="{x(v):.1f}" y="{base_y + 14}" text-anchor="middle">'
            f"{escape(_num(v))}</text>"
        )
    for count in sorted({0, top // 2, top}):
        parts.append(
            f'<text class="y-tick" x="{LEFT - 6}" y="{y(count) + 4:.1f}" text-anchor="end">'
            f"{count}</text>"
        )
    parts += [
        f'<text x="{LEFT + plot_w / 2:.1f}" y="{HEIGHT - 8}" text-anchor="middle">'
        "latency per call (ms)</text>",
        f'<text x="14" y="{TOP + plot_h / 2:.1f}" text-anchor="middle" '
        f'transform="rotate(-90 14 {TOP + plot_h / 2:.1f})">calls</text>',
    ]
    if baseline_ms is not None:
        bx = x(baseline_ms)
        parts += [
            f'<line class="baseline" x1="{bx:.2f}" y1="{TOP}" x2="{bx:.2f}" y2="{base_y}" '
            'stroke="#c0392b" stroke-dasharray="4 3"/>',
            f'<text x="{bx:.2f}" y="{TOP - 4}" text-anchor="middle" fill="#c0392b">'
            f"{escape(f'baseline median {_num(baseline_ms)} ms')}</text>",
        ]
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
