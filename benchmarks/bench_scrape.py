"""Abusive scraping of the Prometheus mirror against the pipeline it observes
(issue 31, item 22).

    python -m benchmarks.bench_scrape [--work 3000] [--repeat 3] [--scrapers 200]
                                      [--slow 50] [--output FILE]

A pure-Python CPU-bound pipeline (``--work`` units) runs in a child process while
this process hammers its ``/metrics``: ``--scrapers`` threads scraping in a loop and
``--slow`` clients that connect, send half a request and hold on. Side by side, in
interleaved rounds (median of ``--repeat``):

- untracked, no scrapers;
- tracked with the Prometheus mirror, no scrapers;
- the same under the storm, with the tracker's server (one thread, bounded);
- the same under the storm with a thread-per-connection server and no timeouts,
  the way prometheus_client's ``start_http_server`` serves (``http.server``'s
  ``ThreadingHTTPServer`` stands in for it here, serving the same bytes).

The figure is the pipeline's wall time against the unscraped tracked run, and how
many scrapes were answered.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import urllib.request
from pathlib import Path
from typing import Any

from benchmarks._results import save

PIPELINE = r"""
import json, sys, time
mode, work = sys.argv[1], int(sys.argv[2])
if mode == "threaded":
    import http.server
    import otel_tracker.exporters.prometheus as prometheus

    class ThreadPerConnection:  # like prometheus_client.start_http_server
        def __init__(self, host, port, render, content_type):
            class Handler(http.server.BaseHTTPRequestHandler):
                def do_GET(self):
                    body = render()
                    self.send_response(200)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)

                def log_message(self, *args):
                    pass

            self._server = http.server.ThreadingHTTPServer((host, port), Handler)
            self._server.daemon_threads = True
            self.port = self._server.server_address[1]
            import threading
            threading.Thread(target=self._server.serve_forever, daemon=True).start()

        def close(self):
            self._server.shutdown()
            self._server.server_close()

    prometheus.ScrapeServer = ThreadPerConnection

def pipeline():
    began = time.perf_counter()
    for _ in range(work):
        sum(i * i for i in range(2000))
    return time.perf_counter() - began

if mode == "untracked":
    print("PORT 0", flush=True)
    time.sleep(1.0)
    print(json.dumps({"wall_s": pipeline()}), flush=True)
else:
    from otel_tracker import track_run
    with track_run("scraped", prometheus="127.0.0.1:0", progress="off",
                   summary_files=False) as run:
        url = run.record.tracker["mirrors"]["prometheus"]["url"]
        print("PORT", url.rsplit(":", 1)[1].split("/")[0], flush=True)
        time.sleep(1.0)  # the storm starts
        with run.step("work"):
            wall = pipeline()
    print(json.dumps({"wall_s": wall}), flush=True)
"""


class Storm:
    """Scrapers in a loop and slow clients that hold connections open."""

    def __init__(self, port: int, scrapers: int, slow: int) -> None:
        self.url = f"http://127.0.0.1:{port}/metrics"
        self.port = port
        self.stop = threading.Event()
        self.answered = self.failed = 0
        self._lock = threading.Lock()
        self.threads = [threading.Thread(target=self._scrape, daemon=True) for _ in range(scrapers)]
        self.threads += [threading.Thread(target=self._slow, daemon=True) for _ in range(slow)]
        for thread in self.threads:
            thread.start()

    def _scrape(self) -> None:
        while not self.stop.is_set():
            try:
                with urllib.request.urlopen(self.url, timeout=5) as response:
                    response.read()
                ok = True
            except OSError:
                ok = False
            with self._lock:
                if ok:
                    self.answered += 1
                else:
                    self.failed += 1

    def _slow(self) -> None:
        while not self.stop.is_set():
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock:
                    sock.sendall(b"GET /metrics HTTP/1.1\r\n")
                    self.stop.wait(10)
            except OSError:
                self.stop.wait(0.1)

    def end(self) -> dict[str, int]:
        self.stop.set()
        for thread in self.threads:
            thread.join(10)
        return {"answered": self.answered, "failed": self.failed}


def one(mode: str, work: int, scrapers: int, slow: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "OTEL_TRACKER_ROOT": str(Path(tmp) / "runs")}
        proc = subprocess.Popen(
            [sys.executable, "-c", PIPELINE, "threaded" if mode == "threaded" else mode, str(work)],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        port = int(proc.stdout.readline().split()[1])
        storm = Storm(port, scrapers, slow) if mode in ("ours", "threaded") else None
        result = json.loads(proc.stdout.readline())
        proc.wait(60)
        if storm is not None:
            result.update(storm.end())
        return result


MODES = {
    "untracked": "untracked, not scraped",
    "idle": "tracked, not scraped",
    "ours": "tracked, storm, the tracker's server",
    "threaded": "tracked, storm, a thread per connection",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--work", type=int, default=60000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--scrapers", type=int, default=200)
    parser.add_argument("--slow", type=int, default=50)
    parser.add_argument("--output", default="benchmarks/results/scrape.json")
    args = parser.parse_args(argv)
    runs: dict[str, list[dict[str, Any]]] = {mode: [] for mode in MODES}
    order = list(MODES)
    for i in range(args.repeat):  # interleaved and rotated: noise and position hit every mode
        for mode in order[i % len(order) :] + order[: i % len(order)]:
            runs[mode].append(one(mode, args.work, args.scrapers, args.slow))
    base = statistics.median(r["wall_s"] for r in runs["idle"])
    rows = {}
    print(f"{'':45} {'wall s':>8} {'vs idle':>8} {'answered':>9} {'failed':>7}")
    for mode, label in MODES.items():
        wall = statistics.median(r["wall_s"] for r in runs[mode])
        answered = sum(r.get("answered", 0) for r in runs[mode])
        failed = sum(r.get("failed", 0) for r in runs[mode])
        rows[label] = {
            "wall_s": round(wall, 3),
            "vs_tracked_idle": round(wall / base, 3),
            "scrapes_answered": answered,
            "scrapes_failed": failed,
        }
        print(f"{label:45} {wall:8.2f} {wall / base:8.3f} {answered:9d} {failed:7d}")
    save({"args": vars(args), "modes": rows}, args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
