"""The analysis as text: the key-figures table and the recommendation lines,
shared by the terminal, the Markdown export and the summary files."""

from __future__ import annotations

from typing import Any

from ..timeparse import format_duration


def _stat(stats: dict[str, Any] | None, key: str = "mean", scale: float = 1.0) -> float | None:
    if not stats or stats.get(key) is None:
        return None
    return float(stats[key]) * scale


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.0f}%"


def _gib(value: float | None) -> str:
    return "-" if value is None else f"{value / 2**30:.2f} GiB"


def _memory(fig: dict[str, Any]) -> str:
    """The tree's peak memory: PSS where measured (shared pages counted once), else RSS."""
    pss = _stat(fig.get("pss_bytes"), "max")
    if pss is not None:
        return f"{_gib(pss)} PSS"
    rss = _stat(fig["rss_bytes"], "max")
    return "-" if rss is None else f"{_gib(rss)} RSS"


def format_number(value: float | None) -> str:
    """``21,773`` or ``4.28`` or ``0.00115``: no exponents, four significant digits."""
    if value is None:
        return "-"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.4g}" if abs(value) >= 1e-4 or value == 0 else f"{value:.2e}"


def _rate(fig: dict[str, Any]) -> str:
    rate = fig.get("throughput")
    if rate is None or not fig.get("items"):
        return "-"
    return f"{format_number(rate)} {fig.get('unit') or 'items'}/s"


def figures_table(analysis: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """One row per step and one for the whole run: time, rate, CPU, memory, GPU."""
    headers = [
        "step",
        "duration",
        "throughput",
        "CPU mean",
        "CPU max",
        "memory max",
        "GPU mean",
        "GPU mem max",
    ]
    figures = analysis["figures"]
    rows = []
    for fig in [*figures["steps"], figures["run"]]:
        gpus = fig.get("gpus") or []
        gpu_util = [g["utilization"]["mean"] for g in gpus if g.get("utilization")]
        gpu_mem = [g["memory_utilization"]["max"] for g in gpus if g.get("memory_utilization")]
        rows.append(
            [
                fig["step"] or "(whole run)",
                format_duration(fig["duration_s"]),
                _rate(fig),
                _pct(_stat(fig["cpu_utilization"])),
                _pct(_stat(fig["cpu_utilization"], "max")),
                _memory(fig),
                _pct(sum(gpu_util) / len(gpu_util)) if gpu_util else "-",
                _pct(max(gpu_mem)) if gpu_mem else "-",
            ]
        )
    return headers, rows


def baseline_line(analysis: dict[str, Any]) -> str:
    base = analysis["baseline"]
    if base["status"] == "used":
        text = f"baseline {base['key']} revision {base['revision']} ({base['runs']} runs)"
    else:
        text = base["note"]
    runs = analysis.get("history_runs") or 0
    return text + (
        f"; history: {runs} earlier completed runs" if runs else "; no earlier completed runs"
    )


def finding_lines(analysis: dict[str, Any], *, markdown: bool = False) -> list[str]:
    """``[warning] throughput-below-baseline (step X): ...`` then why and action."""
    lines = [("- " if markdown else "") + baseline_line(analysis)]
    found = analysis["recommendations"]
    if not found:
        lines.append(("- " if markdown else "") + "no anomalies detected")
    for r in found:
        where = f"step {r['step']}" if r["step"] else None
        lines += finding_markdown(r, where) if markdown else finding_text(r, where)
    return lines


def finding_text(r: dict[str, Any], where: str | None) -> list[str]:
    """One recommendation as terminal lines; ``where`` is shown in parentheses."""
    place = f" ({where})" if where else ""
    return [
        f"[{r['severity']}] {r['id']}{place}: {r['detected']}",
        f"    why: {r['why']}",
        f"    action: {r['action']}",
    ]


def finding_markdown(r: dict[str, Any], where: str | None) -> list[str]:
    """One recommendation as a Markdown list item with why and action under it."""
    place = f" ({where})" if where else ""
    return [
        f"- **{r['severity']}** `{r['id']}`{place}: {r['detected']}",
        f"  - why: {r['why']}",
        f"  - action: {r['action']}",
    ]
