"""``run -- CMD`` and ``pipeline run``: what the wrapper costs the command.

1. A dead OTLP collector: a pipeline file of joined stages (each calls ``track_run``),
   wall time with OTLP off, to a live receiver and to a black hole, interleaved. The
   promise: one bounded delay (``export_timeout``) for the whole run, not one per
   process that joined it.
2. Output on a terminal: a command printing many lines on a pseudo-terminal, run
   directly, wrapped with the live display (its lines go above the display) and
   wrapped with plain progress lines (its bytes go through untouched), interleaved.

    python -m benchmarks.bench_launch [--stages 5] [--lines 300000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import pty
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks._results import save
from tests.otlp_receiver import BlackHole, OtlpGrpcReceiver

STAGE = """
import sys
from otel_tracker import track_run
with track_run(f"stage {sys.argv[1]}", steps=["work"], progress="off") as run:
    with run.step("work") as step:
        step.advance(3)
"""
PRINTER = "import sys\nfor i in range({lines}): print(f'line {{i}} loss 0.123456 acc 0.98765')"


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "otel_tracker.cli", *args]


def _timed(argv: list[str], env: dict[str, str]) -> float:
    began = time.monotonic()
    subprocess.run(argv, env=env, capture_output=True, check=True)
    return time.monotonic() - began


def _on_a_terminal(argv: list[str], env: dict[str, str]) -> float:
    """Wall time of ``argv`` on a pty whose output is read as fast as it comes."""
    began = time.monotonic()
    pid, fd = pty.fork()
    if pid == 0:
        os.execvpe(argv[0], argv, env)
    try:
        while os.read(fd, 65536):
            pass
    except OSError:  # EIO: the command and everything holding the pty are gone
        pass
    finally:
        os.close(fd)
    os.waitpid(pid, 0)
    return time.monotonic() - began


def dead_collector(tmp: Path, stages: int, repeat: int, base: dict[str, str]) -> dict[str, Any]:
    script = tmp / "stage.py"
    script.write_text(STAGE)
    pipeline = tmp / "stages.toml"
    pipeline.write_text(
        'name = "staged"\n'
        + "".join(
            f'[[steps]]\nname = "s{n}"\ncommand = ["{sys.executable}", "{script}", "{n}"]\n'
            for n in range(stages)
        )
    )
    receiver, hole = OtlpGrpcReceiver(), BlackHole()
    cases = {  # the command line, given the mirror's flags
        f"pipeline of {stages} joined stages": lambda f: _cli("pipeline", "run", *f, str(pipeline)),
        "run -- sleep 0.1": lambda f: _cli("run", *f, "--", "sleep", "0.1"),
    }
    configs = {"OTLP off": None, "OTLP live": receiver.endpoint, "OTLP black hole": hole.endpoint}
    times: dict[str, dict[str, list[float]]] = {c: {k: [] for k in configs} for c in cases}
    try:
        for _ in range(repeat):  # interleaved: drift and noise hit every configuration alike
            for case, command in cases.items():
                for name, endpoint in configs.items():
                    flags = ["--otlp", endpoint] if endpoint else []
                    times[case][name].append(_timed(command(flags), base))
    finally:
        receiver.close()
        hole.close()
    print(f"dead collector, export_timeout 2 s, median of {repeat}:")
    results: dict[str, Any] = {}
    for case, by_config in times.items():
        results[case] = {name: round(statistics.median(ts), 3) for name, ts in by_config.items()}
        row = "".join(f"{name} {statistics.median(ts):6.2f} s   " for name, ts in by_config.items())
        print(f"   {case:<34}{row}")
    return results


def terminal_output(lines: int, repeat: int, base: dict[str, str]) -> dict[str, Any]:
    printer = [sys.executable, "-c", PRINTER.format(lines=lines)]
    env = {**base, "TERM": "xterm-256color"}
    configs = {
        "direct": (printer, env),
        "wrapped, live display": (
            _cli("run", "--", *printer),
            {**env, "OTEL_TRACKER_PROGRESS": "live"},
        ),
        "wrapped, plain lines": (
            _cli("run", "--", *printer),
            {**env, "OTEL_TRACKER_PROGRESS": "plain"},
        ),
    }
    times: dict[str, list[float]] = {name: [] for name in configs}
    for _ in range(repeat):
        for name, (argv, config_env) in configs.items():
            times[name].append(_on_a_terminal(argv, config_env))
    direct = statistics.median(times["direct"])
    print(f"{lines} lines on a terminal, median of {repeat}:")
    results: dict[str, Any] = {}
    for name, ts in times.items():
        median = statistics.median(ts)
        results[name] = {"median_s": round(median, 3), "vs_direct": round(median / direct, 3)}
        print(f"   {name:<26}{median:8.2f} s{median / direct:8.2f}x")
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stages", type=int, default=5)
    parser.add_argument("--lines", type=int, default=300_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--output", default="benchmarks/results/launch.json")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="otel-tracker-launch-") as tmp:
        base = {
            **{k: v for k, v in os.environ.items() if not k.startswith("OTEL_")},
            "OTEL_TRACKER_ROOT": str(Path(tmp) / "runs"),
            "OTEL_TRACKER_PROGRESS": "off",
        }
        results = {
            "cpu_count": os.cpu_count(),
            "repeat": args.repeat,
            "dead_collector": dead_collector(Path(tmp), args.stages, args.repeat, base),
            "terminal_output": terminal_output(args.lines, args.repeat, base),
        }
    save(results, args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
