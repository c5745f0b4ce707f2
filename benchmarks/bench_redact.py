"""Redaction cost: linear in the input's length, whatever the input (issue 31, item 16).

    python -m benchmarks.bench_redact [--sizes 0.01,0.02,0.2,2,20] [--repeat 3]
                                      [--no-run] [--output FILE]

For each input shape and size (MB), the median seconds of ``redact_text`` side by side
with two comparisons on the same text: ``json.dumps`` (what writing the value into the
manifest costs anyway: every byte touched once) and the patterns this replaced
(``31040ca``'s redact.py, run up to ``--old-max-mb`` only: they are quadratic in a
word's length, 37 s for 40 KB of ``ACGT``). Seconds per MB that
stay flat from 10 KB to 20 MB are the linearity.

Then end to end (unless ``--no-run``): a tracked run whose param, skip reason and
error message are 20 MB each, against the same run with small values, as separate
processes (median of ``--repeat``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks._results import median_s, save

SHAPES = {
    "DNA (ACGT…), one word": "ACGT",
    "hex digits, one word": "0123456789abcdef",
    "base64, one word": "QUJDRGVmZ2hpamtsbW5vcA+/=",
    "prose": "the quick brown fox jumps over the lazy dog ",
    "JSON, a key every 10 chars": '{"lr": 0.1, "seed": 7}, ',
    "URLs with userinfo, one word": "a://u:p@",
    "flags with secret names": "--token x ",
    "header-like lines": "Key: v\n",
}


def shaped(unit: str, size: int) -> str:
    return (unit * (size // len(unit) + 1))[:size]


# The base version's patterns, verbatim (its redact_text; the name check is today's).
_OLD_URL = re.compile(
    r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^/\s:@]*):(?P<pw>[^/\s@]+)@"
)
_OLD_BEARER = re.compile(r"\b(Bearer|Basic|Token)\s+[A-Za-z0-9._~+/=-]+", re.IGNORECASE)
_OLD_SHAPES = re.compile(
    r"\b(gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}|sk-[A-Za-z0-9_-]{16,}|"
    r"xox[abposr]-[A-Za-z0-9-]{10,}|AKIA[0-9A-Z]{16}|hf_[A-Za-z0-9]{20,}|glpat-[A-Za-z0-9_-]{16,}|"
    r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,})"
)
_OLD_ASSIGNMENT = re.compile(r"(?P<key>[A-Za-z_][A-Za-z0-9_.-]*)(?P<sep>=)(?P<value>[^\s&;]+)")


def old_redact_text(text: str) -> str:
    from otel_tracker.redact.names import is_secret_key

    text = _OLD_URL.sub(lambda m: f"{m['scheme']}{m['user']}:***@", text)
    text = _OLD_BEARER.sub(lambda m: f"{m.group(1)} ***", text)
    text = _OLD_SHAPES.sub("***", text)
    return _OLD_ASSIGNMENT.sub(
        lambda m: f"{m['key']}=***" if is_secret_key(m["key"]) else m.group(0), text
    )


def bench_functions(
    sizes_mb: Sequence[float], repeat: int, old_max_mb: float
) -> list[dict[str, Any]]:
    from otel_tracker.redact.text import redact_text

    rows = []
    for shape, unit in SHAPES.items():
        for mb in sizes_mb:
            text = shaped(unit, int(mb * 1_000_000))
            reps = repeat if mb < 5 else 1
            new = median_s(lambda: redact_text(text), reps)  # noqa: B023
            dumps = median_s(lambda: json.dumps(text), reps)  # noqa: B023
            old = None
            if mb <= old_max_mb:
                old = median_s(lambda: old_redact_text(text), 1)  # noqa: B023
            rows.append(
                {
                    "shape": shape,
                    "mb": mb,
                    "redact_s": round(new, 4),
                    "redact_s_per_mb": round(new / mb, 4),
                    "json_dumps_s": round(dumps, 4),
                    "ratio_to_json_dumps": round(new / dumps, 1) if dumps else None,
                    "old_redact_s": None if old is None else round(old, 4),
                }
            )
            old_s = "-" if old is None else f"{old:.3f}"
            print(
                f"  {shape:<30}{mb:>7g} MB {new:>8.3f} s {new / mb:>8.3f} s/MB"
                f"  json.dumps {dumps:>7.3f} s  old {old_s:>8}",
                flush=True,
            )
    return rows


RUN = """
import sys
from otel_tracker import track_run
n = int(sys.argv[1])
big = "ACGT" * (n // 4)
try:
    with track_run("bench-redact", steps=["a", "b", "c"], progress="off",
                   params={"ref": big}) as run:
        with run.step("a"):
            pass
        run.skip("b", reason=big)
        with run.step("c"):
            raise ValueError(big)
except ValueError:
    pass
"""


def bench_run(size: int, repeat: int) -> dict[str, float]:
    """Median wall seconds of a whole tracked run (a fresh process) with 20 MB values
    and with 4-byte ones, interleaved."""
    times: dict[str, list[float]] = {"20 MB values": [], "small values": []}
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "OTEL_TRACKER_ROOT": str(Path(tmp) / "runs")}
        for _ in range(repeat):
            for label, n in (("small values", 4), ("20 MB values", size)):
                began = time.perf_counter()
                subprocess.run(
                    [sys.executable, "-c", RUN, str(n)], env=env, check=True, timeout=1800
                )
                times[label].append(time.perf_counter() - began)
    return {label: round(statistics.median(t), 2) for label, t in times.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="0.01,0.02,0.2,2,20", help="MB, comma-separated")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--old-max-mb", type=float, default=0.02, help="largest size for old")
    parser.add_argument("--run-size", type=int, default=20_000_000)
    parser.add_argument("--no-run", action="store_true", help="skip the end-to-end runs")
    parser.add_argument("--output", default="benchmarks/results/redact.json")
    args = parser.parse_args(argv)
    sizes = [float(s) for s in args.sizes.split(",") if s.strip()]
    print(f"redact_text, median seconds (old: 31040ca's patterns, up to {args.old_max_mb} MB):")
    results: dict[str, Any] = {"functions": bench_functions(sizes, args.repeat, args.old_max_mb)}
    if not args.no_run:
        results["run"] = bench_run(args.run_size, args.repeat)
        print(f"whole tracked run, median wall seconds: {results['run']}")
    save(results, args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
