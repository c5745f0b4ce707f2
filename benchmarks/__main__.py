"""Run every benchmark with its defaults, one after the other (about 15 minutes).

    python -m benchmarks [--only NAME[,NAME...]]

Each prints its table and writes ``benchmarks/results/<name>.json``; see
``benchmarks/README.md`` for the latest figures and the targets. Nothing else
should run on the machine meanwhile: every figure is side by side with its
comparison, but a busy machine still widens the noise.
"""

from __future__ import annotations

import argparse
import importlib
import time

BENCHMARKS = [
    "overhead",
    "interference",
    "manifest",
    "store",
    "hostile",
    "memory",
    "mirrors",
    "eta",
    "launch",
    "current",
    "redact",
    "scrape",
    "log",
    "ui",
    "eta_real",
    "tqdm_capture",
    "prune",
    "telemetry_compaction",
    "distributed",
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--only", default=",".join(BENCHMARKS), help="comma-separated names")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    for name in names:
        print(f"\n== {name} ==", flush=True)
        began = time.monotonic()
        module = importlib.import_module(f"benchmarks.bench_{name}")
        code = module.main([])
        print(f"({name}: {time.monotonic() - began:.0f} s)", flush=True)
        if code:
            return code
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
