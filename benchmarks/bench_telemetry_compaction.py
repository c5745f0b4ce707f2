"""Telemetry on disk for a 24-hour run at the default sample interval (5 s): with and
without compaction, the packed file's format, what each costs to write and read,
and the error of every aggregate the report shows.

    python -m benchmarks.bench_telemetry_compaction [--hours 24] [--machine small|big]
        [--repeat 3] [--output FILE]

The samples are synthetic but shaped like real ones: ``small`` is the 32 series a
2-core machine writes (noisy utilizations, slowly moving memory, counters,
constants), ``big`` adds 16 cores' and 8 GPUs' series (about 120). Three steps
(10% / 80% / 10% of the run). Each variant is written by the real writer
(``TelemetryWindow``): ``raw`` keeps every sample (window 0), ``compacted`` the
defaults (1 h raw, 60 s roll-ups); then the finished run is packed. Figures:

* bytes on disk, and bytes per hour once past the window, for several settings;
* the packed format: gzip (levels 1, 6, 9), bz2, lzma and a columnar JSON + gzip
  file, by size, time to write and time to read back (median of ``--repeat``);
* the sampler thread's cost per sample, raw file alone vs with the window;
* read times: ``otel-tracker show`` (a subprocess, as a user runs it), the rebuild
  of a killed run's step figures, and the web view's feed of the whole run;
* every aggregate (run and per step, every series: min, max, mean, p95) from the
  compacted and the packed forms against the exact figures of all samples.
"""

from __future__ import annotations

import argparse
import bz2
import gzip
import json
import lzma
import math
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks._results import save
from otel_tracker.contract.telemetry_form import iso_seconds, read_records, record_stats
from otel_tracker.contract.telemetry_pack import pack_telemetry
from otel_tracker.exporters.telemetry import TelemetryFile
from otel_tracker.exporters.telemetry_window import TelemetryWindow
from otel_tracker.history.telemetry_tail import aggregate, rebuild_step_resources
from otel_tracker.ui.telemetry import TelemetryFeed

START = 1_780_000_020.0
INTERVAL = 5.0


def series_of(machine: str) -> list[tuple[str, str]]:
    """(key, shape) of every series a machine writes."""
    keys = [
        ("otel_tracker.process.count", "steps"),
        ("process.cpu.time", "counter"),
        ("process.memory.usage", "memory"),
        ("process.thread.count", "steps"),
        ("process.cpu.utilization", "noise"),
        ("otel_tracker.process.memory.pss", "memory"),
        ("otel_tracker.process.memory.uss", "memory"),
        ("process.unix.file_descriptor.count", "steps"),
        ("process.disk.io{disk.io.direction=read}", "counter"),
        ("process.disk.io{disk.io.direction=write}", "counter"),
        ("process.context_switches{process.context_switch_type=voluntary}", "counter"),
        ("process.context_switches{process.context_switch_type=involuntary}", "counter"),
        ("system.cpu.utilization", "noise"),
        ("otel_tracker.system.cpu.iowait", "noise"),
        ("system.memory.usage{system.memory.state=used}", "memory"),
        ("system.memory.usage{system.memory.state=available}", "memory"),
        ("system.memory.utilization", "noise"),
        ("system.paging.usage{system.paging.state=used}", "constant"),
        ("otel_tracker.system.load_average{window=1m}", "noise"),
        ("otel_tracker.system.load_average{window=5m}", "noise"),
        ("otel_tracker.system.load_average{window=15m}", "noise"),
        ("otel_tracker.system.disk.io_rate{disk.io.direction=read}", "noise"),
        ("otel_tracker.system.disk.io_rate{disk.io.direction=write}", "noise"),
        ("otel_tracker.system.network.io_rate{network.io.direction=receive}", "noise"),
        ("otel_tracker.system.network.io_rate{network.io.direction=transmit}", "noise"),
        ("otel_tracker.run.elapsed", "clock"),
        ("otel_tracker.run.steps.completed", "steps"),
        ("otel_tracker.run.steps.enabled", "constant"),
        ("otel_tracker.run.eta", "clock"),
        ("otel_tracker.step.items", "counter"),
        ("system.cpu.logical.count", "constant"),
        ("otel_tracker.step.throughput", "noise"),
    ]
    cpus = 2 if machine == "small" else 16
    keys += [(f"system.cpu.utilization{{cpu.logical_number={i}}}", "noise") for i in range(cpus)]
    if machine == "big":
        for gpu in range(8):
            keys += [
                (f"hw.gpu.utilization{{hw.id={gpu}}}", "noise"),
                (f"hw.gpu.memory.usage{{hw.id={gpu}}}", "memory"),
                (f"hw.gpu.memory.limit{{hw.id={gpu}}}", "constant"),
                (f"hw.gpu.power{{hw.id={gpu}}}", "noise"),
                (f"hw.gpu.temperature{{hw.id={gpu}}}", "steps"),
                (f"hw.gpu.memory.utilization{{hw.id={gpu}}}", "noise"),
                (f"hw.gpu.io{{hw.id={gpu},direction=receive}}", "counter"),
                (f"hw.gpu.io{{hw.id={gpu},direction=transmit}}", "counter"),
                (f"otel_tracker.gpu.starved{{hw.id={gpu}}}", "constant"),
                (f"hw.gpu.clock{{hw.id={gpu}}}", "steps"),
            ]
    return keys


def samples(hours: float, machine: str, seed: int = 1) -> list[tuple[float, dict[str, Any]]]:
    rng = random.Random(seed)
    keys = series_of(machine)
    state = {key: rng.uniform(1e8, 4e9) if shape == "memory" else 0.0 for key, shape in keys}
    n = int(hours * 3600 / INTERVAL)
    out = []
    for i in range(n):
        t = START + i * INTERVAL
        step = "load" if i < n // 10 else "train" if i < n * 9 // 10 else "eval"
        points: dict[str, Any] = {}
        for key, shape in keys:
            if shape == "noise":
                value = round(rng.random() * (2 if "utilization" in key else 100), 6)
            elif shape == "memory":
                state[key] = max(1e7, state[key] + rng.gauss(0, 2e6))
                value = float(int(state[key]))
            elif shape == "counter":
                state[key] += rng.randrange(0, 5000)
                value = round(state[key], 2)
            elif shape == "steps":
                value = float(rng.choice((3, 3, 3, 4)))
            elif shape == "clock":
                value = round(i * INTERVAL + rng.random() / 100, 6)
            else:
                value = 16
            points[key] = value
        out.append((t, {"t": iso_seconds(t), "run_id": "bench", "step": step, "points": points}))
    return out


def write(run_dir: Path, raw: list, window: float, rollup: float = 60.0) -> float:
    """Write ``raw`` with the real writer; seconds per sample."""
    run_dir.mkdir(parents=True)
    writer = TelemetryWindow(
        TelemetryFile(run_dir / "telemetry.jsonl"),
        run_id="bench",
        window_s=window,
        interval_s=rollup,
    )
    started = time.perf_counter()
    for t, record in raw:
        writer.append(record, t)
    writer.close()
    return (time.perf_counter() - started) / len(raw)


def exact_figures(raw: list) -> dict[str | None, dict[str, dict[str, float]]]:
    values: dict[str | None, dict[str, list[float]]] = {}
    for _t, record in raw:
        for scope in (None, record["step"]):
            for key, value in record["points"].items():
                values.setdefault(scope, {}).setdefault(key, []).append(value)
    out: dict[str | None, dict[str, dict[str, float]]] = {}
    for scope, series in values.items():
        out[scope] = {}
        for key, found in series.items():
            ordered = sorted(found)
            out[scope][key] = {
                "min": ordered[0],
                "max": ordered[-1],
                "mean": sum(ordered) / len(ordered),
                "p95": ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)],
                "count": len(ordered),
            }
    return out


def errors(run_dir: Path, exact: dict) -> dict[str, float]:
    """The worst error of each aggregate over every series, run and step scopes."""
    parts: dict[str | None, dict[str, list]] = {}
    for _t, record in read_records(run_dir):
        for scope in (None, record.get("step")):
            for key, stats in record_stats(record).items():
                parts.setdefault(scope, {}).setdefault(key, []).append(stats)
    worst = {"min_abs": 0.0, "max_abs": 0.0, "mean_rel": 0.0, "p95_rel": 0.0, "count_abs": 0.0}
    for scope, series in exact.items():
        for key, truth in series.items():
            got = aggregate(parts[scope][key])
            worst["min_abs"] = max(worst["min_abs"], abs(got["min"] - round(truth["min"], 6)))
            worst["max_abs"] = max(worst["max_abs"], abs(got["max"] - round(truth["max"], 6)))
            worst["count_abs"] = max(worst["count_abs"], abs(got["count"] - truth["count"]))
            scale = max(abs(truth["mean"]), 1e-9)
            worst["mean_rel"] = max(worst["mean_rel"], abs(got["mean"] - truth["mean"]) / scale)
            scale = max(abs(truth["p95"]), 1e-9)
            worst["p95_rel"] = max(worst["p95_rel"], abs(got["p95"] - truth["p95"]) / scale)
    return worst


def formats(lines: list[bytes], repeat: int) -> dict[str, dict[str, float]]:
    """The packed file's candidates: size, write and read seconds (medians)."""
    data = b"".join(lines)

    def columnar() -> bytes:
        records = [json.loads(x) for x in lines]
        keys = sorted({k for r in records for k in r["points"]})
        doc = {
            "t": [r["t"] for r in records],
            "step": [r.get("step") for r in records],
            "points": {k: [r["points"].get(k) for r in records] for k in keys},
        }
        return gzip.compress(json.dumps(doc, separators=(",", ":")).encode(), 6)

    def read_columnar(blob: bytes) -> int:
        doc = json.loads(gzip.decompress(blob))
        return len(doc["t"])

    def read_lines(blob: bytes, decompress: Any) -> int:
        return sum(1 for x in decompress(blob).split(b"\n") if x and json.loads(x))

    candidates: dict[str, tuple[Any, Any]] = {
        "jsonl (no compression)": (lambda: data, lambda b: read_lines(b, lambda x: x)),
        "gzip level 1": (lambda: gzip.compress(data, 1), lambda b: read_lines(b, gzip.decompress)),
        "gzip level 6": (lambda: gzip.compress(data, 6), lambda b: read_lines(b, gzip.decompress)),
        "gzip level 9": (lambda: gzip.compress(data, 9), lambda b: read_lines(b, gzip.decompress)),
        "bz2": (lambda: bz2.compress(data), lambda b: read_lines(b, bz2.decompress)),
        "lzma": (lambda: lzma.compress(data), lambda b: read_lines(b, lzma.decompress)),
        "columnar json + gzip 6": (columnar, read_columnar),
    }
    out = {}
    for name, (make, read) in candidates.items():
        writes, reads = [], []
        for _ in range(repeat):
            started = time.perf_counter()
            blob = make()
            writes.append(time.perf_counter() - started)
            started = time.perf_counter()
            read(blob)
            reads.append(time.perf_counter() - started)
        out[name] = {
            "bytes": len(blob),
            "write_s": statistics.median(writes),
            "read_s": statistics.median(reads),
        }
    return out


def timed(fn: Any, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def show_seconds(root: Path, run_id: str, repeat: int) -> float:
    command = [sys.executable, "-m", "otel_tracker.cli", "--root", str(root), "show", run_id]
    return timed(lambda: subprocess.run(command, check=True, capture_output=True), repeat)


def make_run(root: Path, name: str) -> Path:
    from otel_tracker import track_run

    with track_run(name, root=root, progress="off", resources=False, summary_files=False) as run:
        pass
    return root / run.run_id


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--machine", choices=("small", "big"), default="small")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--settings",
        default="3600:60,3600:300,21600:60",
        help="window:roll-up seconds pairs whose growth per hour is measured",
    )
    parser.add_argument("--output", default=None)
    args = parser.parse_args(argv)
    settings = [tuple(float(x) for x in pair.split(":")) for pair in args.settings.split(",")]
    output = args.output or f"benchmarks/results/telemetry_compaction_{args.machine}.json"
    raw = samples(args.hours, args.machine)
    exact = exact_figures(raw)
    results: dict[str, Any] = {"hours": args.hours, "machine": args.machine, "samples": len(raw)}
    results["series"] = len(raw[0][1]["points"])
    with tempfile.TemporaryDirectory() as work:
        root = Path(work) / "runs"
        runs = {"raw": make_run(root, "raw"), "compacted": make_run(root, "compacted")}
        for run_dir in runs.values():  # the run's own (empty) telemetry: replaced
            for p in run_dir.glob("telemetry*"):
                p.unlink()
        # the sampler thread's cost per sample, side by side, alternating
        cost: dict[str, list[float]] = {"raw file alone": [], "with the 1 h window": []}
        for i in range(args.repeat):
            for label, window in (("raw file alone", 0.0), ("with the 1 h window", 3600.0)):
                where = Path(work) / f"cost-{i}-{window:g}"
                cost[label].append(write(where, raw, window) * 1e6)
                shutil.rmtree(where)
        results["write_us_per_sample"] = {k: statistics.median(v) for k, v in cost.items()}
        for label, window in (("raw", 0.0), ("compacted", 3600.0)):
            target = runs[label]
            tmp = Path(work) / f"w-{label}"
            write(tmp, raw, window)
            for p in tmp.iterdir():
                shutil.move(str(p), target / p.name)
        sizes = {"raw (every sample, no compaction)": dir_bytes_telemetry(runs["raw"])}
        sizes["compacted, live (1 h raw + 60 s roll-ups)"] = dir_bytes_telemetry(runs["compacted"])
        results["errors_compacted_live"] = errors(runs["compacted"], exact)
        # read times before packing: a killed run's rebuild and the web view's feed
        reads: dict[str, float] = {}
        doc = {
            "telemetry": {"run": {k: {} for k in raw[0][1]["points"]}},
            "steps": [
                {"name": "train", "status": "running", "started_at": raw[len(raw) // 10][1]["t"]}
            ],
        }
        rebuilt: dict[str, int] = {}
        for label, run_dir in runs.items():
            found = json.loads(json.dumps(doc))
            rebuild_step_resources(found, run_dir)
            figures = found["steps"][0].get("resources") or {}  # none: no sample was reached
            cpu = (figures.get("process.cpu.utilization") or {}).get("count", 0)
            rebuilt[label] = cpu
            reads[f"rebuild a killed run's step figures ({label})"] = timed(
                lambda d=run_dir: rebuild_step_resources(json.loads(json.dumps(doc)), d),
                args.repeat,
            )
            reads[f"web view feed, whole run ({label})"] = timed(
                lambda d=run_dir: TelemetryFeed(d / "telemetry.jsonl").catch_up(60), args.repeat
            )
            reads[f"otel-tracker show ({label})"] = show_seconds(root, run_dir.name, args.repeat)
        packed = pack_telemetry(runs["compacted"], window_s=3600, interval_s=60)
        assert packed is not None
        sizes["compacted and packed (telemetry.jsonl.gz)"] = dir_bytes_telemetry(runs["compacted"])
        raw_packed = Path(work) / "raw-packed"
        shutil.copytree(runs["raw"], raw_packed)
        pack_telemetry(raw_packed, window_s=0, interval_s=60)
        sizes["raw, packed without roll-ups (window 0)"] = dir_bytes_telemetry(raw_packed)
        results["errors_packed"] = errors(runs["compacted"], exact)
        reads["rebuild a killed run's step figures (packed)"] = timed(
            lambda: rebuild_step_resources(json.loads(json.dumps(doc)), runs["compacted"]),
            args.repeat,
        )
        reads["web view feed, whole run (packed)"] = timed(
            lambda: TelemetryFeed(runs["compacted"] / "telemetry.jsonl").catch_up(60), args.repeat
        )
        reads["otel-tracker show (packed)"] = show_seconds(
            root, runs["compacted"].name, args.repeat
        )
        rebuilt["exact"] = exact["train"]["process.cpu.utilization"]["count"]
        results["killed_run_train_samples_rebuilt"] = rebuilt
        results["bytes"] = sizes
        results["read_s"] = reads
        # what the live form grows by per hour once past the window: the roll-up file
        # (the raw file stays between 1 and 1.25 windows of samples), for a few settings
        per_hour: dict[str, float] = {}
        raw_kept: dict[str, int] = {}
        for window, rollup in settings:
            hours = window / 3600 + 4
            where = Path(work) / "settings"
            write(where, samples(hours, args.machine), window, rollup)
            label = f"window {window / 3600:g} h, roll-up {rollup:g} s"
            per_hour[label] = (where / "telemetry.rollup.jsonl").stat().st_size / hours
            raw_kept[label] = (where / "telemetry.jsonl").stat().st_size
            shutil.rmtree(where)
        per_hour["no compaction (window 0)"] = (
            sizes["raw (every sample, no compaction)"] / args.hours
        )
        results["raw_file_bytes_at_the_end"] = raw_kept
        results["live_bytes_per_hour_past_the_window"] = per_hour
        lines = [json.dumps(r, separators=(",", ":")).encode() + b"\n" for _, r in raw]
        results["packed_format_24h_raw"] = formats(lines, args.repeat)
    _print(results)
    save(results, output)


def dir_bytes_telemetry(run_dir: Path) -> int:
    return sum(p.stat().st_size for p in run_dir.glob("telemetry*") if p.is_file())


def _print(results: dict[str, Any]) -> None:
    print(f"{results['hours']:g} h, {results['machine']} machine, {results['series']} series")
    for label, value in results["bytes"].items():
        print(f"  {label:48s} {value:>12,d} B")
    for label, value in results["live_bytes_per_hour_past_the_window"].items():
        print(f"  grows per hour: {label:32s} {value:>12,.0f} B")
    for label, value in results["raw_file_bytes_at_the_end"].items():
        print(f"  raw file kept: {label:33s} {value:>12,d} B")
    print(
        f"  a killed run's 21.6 h step, samples rebuilt: {results['killed_run_train_samples_rebuilt']}"
    )
    for label, value in results["write_us_per_sample"].items():
        print(f"  write, {label:40s} {value:8.1f} us/sample")
    for label, value in results["read_s"].items():
        print(f"  {label:56s} {value:8.3f} s")
    for scope in ("errors_compacted_live", "errors_packed"):
        print(f"  {scope}: {results[scope]}")
    for name, figures in results["packed_format_24h_raw"].items():
        print(
            f"  format {name:24s} {figures['bytes']:>12,d} B  write {figures['write_s']:.2f} s"
            f"  read {figures['read_s']:.2f} s"
        )


if __name__ == "__main__":
    main()
