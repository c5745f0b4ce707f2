"""The web view's figures (issue 25), each beside its comparison, in one run.

    python -m benchmarks.bench_ui [--runs 10000] [--repeat 5] [--transitions 12]
                                  [--clients 50] [--seconds 30] [--samples 17280]
                                  [--output FILE]

1. **Runs page at N runs** (cloned realistic runs, as ``bench_store``): the first
   render in headless Chromium (navigation start to the first row drawn, the page's
   own ``performance.now()``), and the server's ``/api/runs`` answer, interleaved
   with ``otel-tracker list --limit 20`` and ``RunStore.list(limit=20)``.
2. **Update latency**: a real tracked run (5 s heartbeat) moves to its next step at
   random moments; the page records when its row shows the step
   (a MutationObserver, ``Date.now()``) against the step's ``started_at`` in the
   manifest: disk to screen.
3. **Clients**: ``--clients`` WebSocket clients watching one live run (each sends
   what the run page sends and reads everything pushed) for ``--seconds``: the
   server's CPU (``/proc/PID/stat``) and memory; and a CPU-bound tracked pipeline's
   wall time, watched and unwatched, interleaved.
4. **A day of telemetry** (``--samples`` at 5 s, the points of a real sample): the
   telemetry API's answer cold (first parse) and warm, and the run page's charts
   drawn in Chromium.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import functools
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from benchmarks._browser import CHROMIUM_ARGS, chromium_path
from benchmarks._results import save
from benchmarks.bench_store import populate, run_cli, template_manifest

DRIVEN = r"""
import sys, time
from pathlib import Path
from otel_tracker import track_run
gate, steps = Path(sys.argv[1]), int(sys.argv[2])
names = [f"stage {i}" for i in range(steps)]
def wait(name):
    while not (gate / name).exists():
        time.sleep(0.005)

with track_run("latency", steps=names, progress="off") as run:
    (gate / "run_id").write_text(run.run_id)
    for i, name in enumerate(names):
        wait(f"go-{i}")
        with run.step(name):  # until the next one is asked for
            wait(f"go-{i + 1}" if i + 1 < steps else "end")
"""

WORK = r"""
import sys, time
from otel_tracker import track_run
units, interval = int(sys.argv[1]), float(sys.argv[2])
t0 = time.perf_counter()
with track_run("watched", steps=["work"], progress="off", sample_interval=interval) as run:
    print(run.run_id, flush=True)
    with run.step("work", total=units) as step:
        for _ in range(units):
            sum(i * i for i in range(20_000))
            step.advance()
print(time.perf_counter() - t0, flush=True)
"""


class UiProcess:
    """``otel-tracker ui --port 0`` as a subprocess, as a user starts it."""

    def __init__(self, root: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "otel_tracker.cli", "--root", str(root), "ui", "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        line = self.proc.stdout.readline()  # type: ignore[union-attr]
        self.url = line.split(": ", 1)[1].strip()

    def cpu_s(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


def get_s(url: str) -> float:
    t0 = time.perf_counter()
    with urllib.request.urlopen(url, timeout=120) as response:
        response.read()
    return time.perf_counter() - t0


def _median(values: list[float]) -> float:
    return round(statistics.median(values), 4) if values else float("nan")


def bench_runs_page(workdir: Path, n: int, repeat: int, browser: Any) -> dict[str, Any]:
    from otel_tracker.config import ReaderConfig
    from otel_tracker.history.store import RunStore

    root = workdir / f"runs-{n}"
    root.mkdir()
    populate(root, n, template_manifest(workdir / "template"))
    fresh = []
    for _ in range(repeat):  # a server just started: its row cache is still filling
        ui = UiProcess(root)
        try:
            page = browser.new_page()
            page.goto(ui.url)
            page.wait_for_selector("#runs tbody tr", timeout=60_000)
            fresh.append(page.evaluate("performance.now()") / 1e3)
            page.close()
        finally:
            ui.close()
    ui = UiProcess(root)
    try:
        cold_api = get_s(ui.url + "api/runs?limit=50")  # before the background warm-up ends
        time.sleep(max(5.0, n / 2000))  # the warm-up reads every row once
        store = RunStore(config=ReaderConfig.resolve(root=root))
        times: dict[str, list[float]] = {
            "page first render (Chromium)": [],
            "GET /api/runs?limit=50": [],
            "otel-tracker list --limit 20": [],
            "RunStore.list(limit=20), in-process": [],
        }
        for _ in range(repeat):
            page = browser.new_page()
            page.goto(ui.url)
            page.wait_for_selector("#runs tbody tr", timeout=60_000)
            times["page first render (Chromium)"].append(page.evaluate("performance.now()") / 1e3)
            page.close()
            times["GET /api/runs?limit=50"].append(get_s(ui.url + "api/runs?limit=50"))
            t0 = time.perf_counter()
            run_cli(root, "list", "--limit", "20")
            times["otel-tracker list --limit 20"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            store.list(limit=20)
            times["RunStore.list(limit=20), in-process"].append(time.perf_counter() - t0)
        searched = get_s(ui.url + "api/runs?limit=50&q=no-such-run")  # every row, from the cache
    finally:
        ui.close()
    return {
        "runs": n,
        "median_s": {k: _median(v) for k, v in times.items()},
        "page_first_render_just_started_s": _median(fresh),
        "first_api_call_s": round(cold_api, 4),
        "search_all_rows_s": round(searched, 4),
    }


def bench_latency(workdir: Path, transitions: int, browser: Any) -> dict[str, Any]:
    root, gate = workdir / "latency-runs", workdir / "latency-gate"
    root.mkdir()
    gate.mkdir()
    ui = UiProcess(root)
    env = {**os.environ, "OTEL_TRACKER_ROOT": str(root)}
    run = subprocess.Popen([sys.executable, "-c", DRIVEN, str(gate), str(transitions)], env=env)
    latencies = []
    try:
        while not (gate / "run_id").exists():
            time.sleep(0.01)
        run_id = (gate / "run_id").read_text()
        page = browser.new_page()
        page.goto(ui.url)
        page.wait_for_selector(f'tr[data-run="{run_id}"]', timeout=60_000)
        page.evaluate(
            """id => { window.seen = {};
            new MutationObserver(() => {
              const row = document.querySelector(`tr[data-run="${id}"]`);
              const m = row && row.innerText.match(/Step (\\d+)\\//);
              if (m && !(m[1] in window.seen)) window.seen[m[1]] = Date.now();
            }).observe(document.querySelector('#runs tbody'),
                       {subtree: true, childList: true, characterData: true}); }""",
            run_id,
        )
        for i in range(transitions):
            time.sleep(random.uniform(0.7, 1.6))
            (gate / f"go-{i}").touch()
            page.wait_for_function(f"() => '{i + 1}' in window.seen", timeout=30_000)
        seen = page.evaluate("window.seen")
        doc = json.loads((root / run_id / "manifest.json").read_text())
        from otel_tracker.timeparse import parse_timestamp

        for i, step in enumerate(doc["steps"]):
            started = parse_timestamp(step["started_at"])
            if str(i + 1) in seen and started is not None:
                latencies.append(seen[str(i + 1)] / 1e3 - started)
        page.close()
    finally:
        (gate / "end").touch()
        try:
            run.wait(60)
        finally:
            run.kill()
            ui.close()
    return {
        "transitions": len(latencies),
        "median_s": _median(latencies),
        "max_s": round(max(latencies), 4) if latencies else None,
        "heartbeat_s": 5.0,
    }


async def _watchers(url: str, run_id: str, clients: int, stop: threading.Event) -> int:
    import aiohttp

    received = 0

    async def one(session: Any) -> None:
        nonlocal received
        async with session.ws_connect(url.replace("http", "ws") + "ws") as ws:
            await ws.send_str(json.dumps({"watch": "run", "run_id": run_id}))
            while not stop.is_set():
                try:
                    await asyncio.wait_for(ws.receive(), 0.5)
                    received += 1
                except asyncio.TimeoutError:
                    continue

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(one(session) for _ in range(clients)))
    return received


def _attach(
    ui: UiProcess,
    clients: int,
    stop: threading.Event,
    window: dict[str, float],
    results: list[int],
    run_id: str,
) -> None:
    """Start the watchers of ``run_id`` on a thread; note the server's CPU time now."""

    def serve() -> None:
        results.append(asyncio.run(_watchers(ui.url, run_id, clients, stop)))

    threading.Thread(target=serve, daemon=True).start()
    window["cpu0"], window["t0"] = ui.cpu_s(), time.monotonic()


def _work(root: Path, units: int, interval: float, on_start: Any = None) -> float:
    env = {**os.environ, "OTEL_TRACKER_ROOT": str(root)}
    proc = subprocess.Popen(
        [sys.executable, "-c", WORK, str(units), str(interval)],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    run_id = proc.stdout.readline().strip()  # type: ignore[union-attr]
    if on_start is not None:
        on_start(run_id)
    out, _ = proc.communicate(timeout=600)
    return float(out.strip().splitlines()[-1])


def bench_clients(workdir: Path, clients: int, seconds: float, repeat: int) -> dict[str, Any]:
    root = workdir / "clients-runs"
    root.mkdir()
    ui = UiProcess(root)
    units = max(50, int(seconds * 600))  # about --seconds of work at ~1.5 ms a unit
    walls: dict[str, list[float]] = {"unwatched": [], "watched": []}
    cpu_share: list[float] = []
    received = 0
    rss = [ui.rss_mb()]
    try:
        for _ in range(repeat):
            walls["unwatched"].append(_work(root, units, 1.0))
            stop = threading.Event()
            window: dict[str, float] = {}
            results: list[int] = []
            attach = functools.partial(_attach, ui, clients, stop, window, results)
            walls["watched"].append(_work(root, units, 1.0, attach))
            cpu_share.append((ui.cpu_s() - window["cpu0"]) / (time.monotonic() - window["t0"]))
            rss.append(ui.rss_mb())
            stop.set()
            deadline = time.monotonic() + 10
            while not results and time.monotonic() < deadline:
                time.sleep(0.05)
            received += sum(results)
    finally:
        ui.close()
    unwatched, watched = _median(walls["unwatched"]), _median(walls["watched"])
    return {
        "clients": clients,
        "server_cpu_share_of_one_core": round(statistics.median(cpu_share), 4),
        "server_rss_mb": [round(r, 1) for r in rss],
        "messages_received": received,
        "pipeline_wall_s": {"unwatched": unwatched, "watched": watched},
        "pipeline_slowdown": round(watched / unwatched, 3),
    }


def write_day(root: Path, samples: int, template: dict[str, Any]) -> str:
    """A finished run with ``samples`` telemetry lines at 5 s (a real sample's points)."""
    start = datetime(2026, 11, 30, tzinfo=timezone.utc)
    run_id = f"{start.strftime('%Y%m%dT%H%M%S')}.000Z-long-run-abcdef"
    doc = copy.deepcopy(template)
    doc.update(run_id=run_id, name="long-run", started_at=start.strftime("%Y-%m-%dT%H:%M:%SZ"))
    path = root / run_id
    path.mkdir(parents=True)
    (path / "manifest.json").write_text(json.dumps(doc))
    points = {
        "process.cpu.utilization": 0.5,
        "system.cpu.utilization": 0.6,
        "otel_tracker.process.memory.pss": 2.1e9,
        "process.memory.usage": 2.5e9,
        "system.memory.usage{system.memory.state=used}": 9e9,
        "otel_tracker.step.items": 0,
        "process.thread.count": 12,
        "process.disk.io{disk.io.direction=read}": 1e6,
        "otel_tracker.system.load_average{window=1m}": 1.2,
    }
    rng = random.Random(1)
    with (path / "telemetry.jsonl").open("w") as file:
        for i in range(samples):
            at = start + timedelta(seconds=5 * i)
            sample = dict(points)
            sample["process.cpu.utilization"] = round(rng.random(), 4)
            sample["otel_tracker.step.items"] = i * 50
            line = {"t": at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "run_id": run_id, "step": "Train"}
            file.write(json.dumps({**line, "points": sample}) + "\n")
    return run_id


def bench_day(workdir: Path, samples: int, repeat: int, browser: Any) -> dict[str, Any]:
    root = workdir / "day-runs"
    root.mkdir()
    run_id = write_day(root, samples, template_manifest(workdir / "template-day"))
    size = (root / run_id / "telemetry.jsonl").stat().st_size
    cold, warm, render, points = [], [], [], 0
    for _ in range(repeat):
        ui = UiProcess(root)
        try:
            cold.append(get_s(ui.url + f"api/runs/{run_id}/telemetry"))
            warm.append(get_s(ui.url + f"api/runs/{run_id}/telemetry"))
            page = browser.new_page()
            page.goto(ui.url + "run/" + run_id)
            page.wait_for_function(
                "() => window.otelTracker.charts.cpu && window.otelTracker.charts.cpu.data[0].length",
                timeout=120_000,
            )
            render.append(page.evaluate("performance.now()") / 1e3)
            points = page.evaluate("window.otelTracker.charts.cpu.data[0].length")
            page.close()
        finally:
            ui.close()
    return {
        "samples": samples,
        "file_mb": round(size / 2**20, 1),
        "api_cold_s": _median(cold),
        "api_warm_s": _median(warm),
        "page_charts_drawn_s": _median(render),
        "points_per_series_sent": points,
        "downsampling": "min and max per time bucket, 600 buckets",
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--transitions", type=int, default=12)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--samples", type=int, default=17_280)
    parser.add_argument("--output", default="benchmarks/results/ui.json")
    args = parser.parse_args(argv)
    executable = chromium_path()
    if executable is None:
        sys.exit("no chromium: install Debian's chromium or set OTEL_TRACKER_CHROMIUM")
    from playwright.sync_api import sync_playwright

    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        workdir = Path(tmp)
        results["runs_page"] = bench_runs_page(workdir, args.runs, args.repeat, browser)
        print(json.dumps(results["runs_page"], indent=2), flush=True)
        results["latency"] = bench_latency(workdir, args.transitions, browser)
        print(json.dumps(results["latency"], indent=2), flush=True)
        results["clients"] = bench_clients(workdir, args.clients, args.seconds, args.repeat)
        print(json.dumps(results["clients"], indent=2), flush=True)
        results["day"] = bench_day(workdir, args.samples, max(1, min(args.repeat, 3)), browser)
        print(json.dumps(results["day"], indent=2), flush=True)
        browser.close()
    save(results, args.output)


if __name__ == "__main__":
    main()
