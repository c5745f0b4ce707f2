"""A distributed job of 64 ranks simulated as processes (16 hosts of 4), tracked and
untracked side by side: the ranks' wall time, the writes that reach the shared runs
root, and what the readers cost on the finished run.

    python -m benchmarks.bench_distributed [--hosts 16] [--per-host 4] [--steps 5]
        [--step-seconds 3] [--batches 10] [--cpu-iterations 100000] [--repeat 3]
        [--readers-repeat 5] [--no-strace] [--output FILE]

About 3.5 minutes at the defaults on a 2-core machine.

The hosts are the tests' launcher (``tests/distributed/launcher.py``): an agent per
host in its own UTS namespace (``unshare --uts``, so root only; one host runs
without), starting its ranks with torch elastic's variables; every host shares
one runs root, as on a shared filesystem. Every rank runs the same script (written
to the work folder, see ``RANK_SCRIPT``): ``track_run`` (or, untracked, the same
script without it and without importing the tracker), a barrier as
``init_process_group``, then ``--steps`` steps of ``--batches`` batches each, a
batch being a sleep, a small fixed CPU loop, a ``run.log`` and a
``step.advance()``; every step ends at a barrier, as DDP's all-reduce makes the
ranks wait for the slowest. The barrier is a TCP server in this process, not the
filesystem. Figures:

* each rank's wall time (from its process's start, read from ``/proc``, to its
  last ``atexit`` handler), median and max over the ranks, and the job's (the
  launcher's), over ``--repeat`` alternating untracked/tracked rounds (medians);
  split into start-up (to the first step), steps and exit; and CPU seconds, of
  the whole job (every process the launcher waited for) and of a rank's process;
* one more tracked job under ``strace -f`` (``--seccomp-bpf``, so only the traced
  calls stop): every write-type call (open for writing, write, rename, link,
  fsync, unlink, mkdir) whose path is under the runs root, by file kind
  (manifest, rank parts, telemetry, metrics, rendezvous, locks, summary), over the
  whole job and per second over its steady phase (every rank between its first
  step's start and its last step's end), beside the naive design (every rank
  rewriting its part every 5 s) over the same seconds; strace slows the job, its
  own wall time is printed beside the untraced ones;
* ``otel-tracker show latest`` and ``list`` (subprocesses, median of 5) and
  ``RunStore.open(root).list()`` in-process on the finished run, beside a
  single-process run of the same steps; the run directory's files and bytes;
* on paper, from the measured per-rank figures: 4,096 ranks on 512 hosts.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from benchmarks._results import median_s, save

REPO = Path(__file__).resolve().parents[1]
NAIVE_INTERVAL_S = 5.0  # the naive design: every rank rewrites its part at the heartbeat
PAPER_HOSTS, PAPER_PER_HOST = 512, 8
STORE_LIST = "RunStore.open(root).list() in-process"
TRACED = (
    "openat,open,creat,write,pwrite64,writev,rename,renameat,renameat2,link,linkat,"
    "fsync,fdatasync,unlink,unlinkat,mkdir,mkdirat"
)

RANK_SCRIPT = '''\
"""One rank of the benchmark's job (written by benchmarks/bench_distributed.py)."""
import atexit, contextlib, json, os, socket, time


def process_start():
    """This process's start on the wall clock (10 ms resolution), from /proc."""
    with open("/proc/self/stat") as stat:
        ticks = int(stat.read().rsplit(")", 1)[1].split()[19])
    age = time.clock_gettime(time.CLOCK_BOOTTIME) - ticks / os.sysconf("SC_CLK_TCK")
    return time.time() - age


TIMES = {"started": process_start()}
RANK = int(os.environ["RANK"])
OUT = os.environ["BENCH_OUT"]


def done():
    TIMES["ended"] = time.time()
    TIMES["cpu_ended"] = time.process_time()  # this process's threads, not its helper
    with open(f"{OUT}/rank-{RANK:05d}.json", "w") as out:
        json.dump({"rank": RANK, **TIMES}, out)


atexit.register(done)  # registered first: runs last, after the tracker's own
TRACKED = os.environ["BENCH_TRACKED"] == "1"
STEPS = int(os.environ["BENCH_STEPS"])
BATCHES = int(os.environ["BENCH_BATCHES"])
BATCH_S = float(os.environ["BENCH_STEP_S"]) / BATCHES
CPU = int(os.environ["BENCH_CPU_ITERATIONS"]) // BATCHES
PORT = int(os.environ["BENCH_PORT"])
if TRACKED:
    import otel_tracker


def barrier(name):
    with socket.create_connection(("127.0.0.1", PORT), timeout=900) as conn:
        conn.sendall(name.encode() + b"\\n")
        if conn.recv(8) != b"go":
            raise SystemExit(f"rank {RANK}: barrier {name!r} broken")


class Untracked:
    def step(self, name, **kwargs):
        return contextlib.nullcontext(self)

    def advance(self, n=1):
        pass

    def log(self, *args, **kwargs):
        pass


names = [f"step {i + 1}" for i in range(STEPS)]
opened = (
    otel_tracker.track_run("bench-ddp", steps=names, progress="off")
    if TRACKED
    else contextlib.nullcontext(Untracked())
)
with opened as run:
    barrier("init")
    TIMES["first_step"] = time.time()
    TIMES["cpu_first_step"] = time.process_time()
    for i, name in enumerate(names):
        with run.step(name, total=BATCHES, unit="batch") as step:
            for b in range(BATCHES):
                time.sleep(BATCH_S)
                x = 0
                for k in range(CPU):
                    x += k * k
                run.log("loss", 1.0 / (i * BATCHES + b + 1), step=i * BATCHES + b)
                step.advance()
            barrier(name)
    TIMES["last_step"] = time.time()
    TIMES["cpu_last_step"] = time.process_time()
'''


class Barrier:
    """Every rank waits at each named point until all are there, like a collective:
    a TCP server on 127.0.0.1 in this process (the hosts share its network)."""

    def __init__(self, world: int) -> None:
        self.world = world
        self.server = socket.create_server(("127.0.0.1", 0), backlog=4096)
        self.port = self.server.getsockname()[1]
        self.waiting: dict[bytes, list[socket.socket]] = {}
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return  # closed
            try:
                conn.settimeout(30)
                data = b""
                while not data.endswith(b"\n"):
                    chunk = conn.recv(256)
                    if not chunk:
                        break
                    data += chunk
            except OSError:
                conn.close()
                continue
            group = self.waiting.setdefault(data.strip(), [])
            group.append(conn)
            if len(group) == self.world:
                for member in group:
                    try:
                        member.sendall(b"go")
                    except OSError:
                        pass
                    member.close()
                del self.waiting[data.strip()]

    def close(self) -> None:
        self.server.close()
        for group in self.waiting.values():
            for conn in group:
                conn.close()


def job_env(root: Path, out: Path, args: argparse.Namespace, tracked: bool, port: int) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(
        OTEL_TRACKER_ROOT=str(root),
        PYTHONPATH=str(REPO),
        PYTHONUNBUFFERED="1",
        BENCH_OUT=str(out),
        BENCH_TRACKED="1" if tracked else "0",
        BENCH_STEPS=str(args.steps),
        BENCH_BATCHES=str(args.batches),
        BENCH_STEP_S=str(args.step_seconds),
        BENCH_CPU_ITERATIONS=str(args.cpu_iterations),
        BENCH_PORT=str(port),
    )
    return env


def run_job(
    work: Path,
    root: Path,
    label: str,
    args: argparse.Namespace,
    *,
    tracked: bool,
    strace_to: Path | None = None,
) -> dict[str, Any]:
    """Launch the job once; its wall time and every rank's phases."""
    world = args.hosts * args.per_host
    out = work / f"ranks-{label}"
    out.mkdir()
    barrier = Barrier(world)
    command = [
        sys.executable,
        "-m",
        "tests.distributed.launcher",
        *("--hosts", str(args.hosts), "--per-host", str(args.per_host)),
        *("--job", f"bench-{label}-{secrets.token_hex(3)}"),
        *(["--same-host"] if args.hosts == 1 else []),
        "--",
        sys.executable,
        str(work / "rank.py"),
    ]
    if strace_to is not None:
        strace_to.mkdir()
        command = [
            *("strace", "-f", "-ff", "--seccomp-bpf", "-ttt", "-y", "-s", "0", "-qq"),
            *("-e", f"trace={TRACED}", "-e", "signal=none", "-o", str(strace_to / "t")),
            *command,
        ]
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.time()
    try:
        proc = subprocess.run(
            command,
            cwd=REPO,
            env=job_env(root, out, args, tracked, barrier.port),
            capture_output=True,
            text=True,
            timeout=900 + 10 * args.steps * args.step_seconds,
        )
    finally:
        barrier.close()
    wall = time.time() - began
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # every process of the job, helpers included (each was waited for by its parent)
    job_cpu = (cpu_after.ru_utime + cpu_after.ru_stime) - (
        cpu_before.ru_utime + cpu_before.ru_stime
    )
    if proc.returncode != 0:
        raise SystemExit(f"{label}: the job failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    ranks = [json.loads(p.read_text()) for p in sorted(out.glob("rank-*.json"))]
    if len(ranks) != world or any("last_step" not in r for r in ranks):
        raise SystemExit(f"{label}: {len(ranks)} of {world} ranks reported:\n{proc.stderr[-4000:]}")
    walls = [r["ended"] - r["started"] for r in ranks]
    return {
        "job_wall_s": wall,
        "rank_wall_median_s": statistics.median(walls),
        "rank_wall_max_s": max(walls),
        "start_median_s": statistics.median(r["first_step"] - r["started"] for r in ranks),
        "steps_median_s": statistics.median(r["last_step"] - r["first_step"] for r in ranks),
        "exit_median_s": statistics.median(r["ended"] - r["last_step"] for r in ranks),
        # rank 0 ends the run: its summary files hold every rank
        "rank0_exit_s": ranks[0]["ended"] - ranks[0]["last_step"],
        "job_cpu_s": job_cpu,
        "rank_cpu_median_s": statistics.median(r["cpu_ended"] for r in ranks),
        "rank_cpu_in_steps_median_s": statistics.median(
            r["cpu_last_step"] - r["cpu_first_step"] for r in ranks
        ),
        # every rank in its steps: the steady phase
        "steady": (max(r["first_step"] for r in ranks), min(r["last_step"] for r in ranks)),
        "stderr_lines": len(proc.stderr.splitlines()),
    }


# -- strace's record of the writes ------------------------------------------------

_LINE = re.compile(
    r"^(?P<t>\d+\.\d+) (?P<call>\w+)\((?P<args>.*)\) += (?P<ret>-?\d+)(?:<(?P<path>[^>]*)>)?"
)
_STRING = re.compile(r'"((?:[^"\\]|\\.)*)"')
_DIRFD = re.compile(r"(?:AT_FDCWD|\d+)<([^>]*)>")
_FD = re.compile(r"^\d+<([^>]*)>")
_RANK = re.compile(r"rank-(\d+)")
WRITES = ("write", "pwrite64", "writev")


def strace_events(folder: Path) -> list[tuple[float, str, str, int, str]]:
    """``(time, operation, absolute path, bytes, a rename's source)`` of every
    successful traced call."""
    events = []
    for path in folder.iterdir():
        with open(path, errors="replace") as lines:
            for line in lines:
                m = _LINE.match(line)
                if m is None or int(m["ret"]) < 0:
                    continue
                call, argtext, ret = m["call"], m["args"], int(m["ret"])
                t = float(m["t"])
                if call in WRITES:
                    fd = _FD.match(argtext)
                    if fd:
                        events.append((t, "write", fd.group(1), ret, ""))
                elif call in ("fsync", "fdatasync"):
                    fd = _FD.match(argtext)
                    if fd:
                        events.append((t, "fsync", fd.group(1), 0, ""))
                elif call in ("openat", "open", "creat"):
                    writing = call == "creat" or re.search(r"O_WRONLY|O_RDWR|O_CREAT", argtext)
                    if writing and m["path"]:
                        op = "create" if "O_CREAT" in argtext or call == "creat" else "open"
                        events.append((t, op, m["path"], 0, ""))
                else:
                    strings = _STRING.findall(argtext)
                    dirs = _DIRFD.findall(argtext)
                    if not strings:
                        continue
                    source = ""
                    if call.startswith(("unlink", "mkdir")):
                        target = strings[-1]
                    elif len(strings) >= 2:
                        source, target = strings[0], strings[1]
                        if not source.startswith("/") and dirs:
                            source = f"{dirs[0]}/{source}"
                    else:
                        continue
                    if not target.startswith("/") and dirs:
                        target = f"{dirs[-1]}/{target}"
                    op = {"r": "rename", "l": "link", "u": "unlink", "m": "mkdir"}[call[0]]
                    events.append((t, op, target, 0, source))
    events.sort()
    return events


def kind_of(rel: str, root: Path) -> str:
    """The file kind of a path under the runs root (a temp file names its target)."""
    parts = rel.split("/")
    if parts[0] == ".jobs":
        return "rendezvous"
    if (root / rel).is_dir():
        return "directories"
    if parts[-1].endswith(".lock"):
        return "locks"
    name = parts[-1].lstrip(".")
    if "metrics" in name and ".jsonl" in name:
        return "metrics"
    if name.startswith("telemetry") or "hosts" in parts[1:2]:
        return "telemetry"
    if name.startswith("manifest.json"):
        return "manifest"
    if name.startswith("rank-") and ".json" in name:
        return "rank parts"
    if name.startswith("summary"):
        return "summary"
    return "other"


def count_writes(
    events: list[tuple[float, str, str, int, str]], root: Path, steady: tuple[float, float]
) -> dict[str, Any]:
    """The root's writes by kind: whole job and per second of the steady phase."""
    base = str(root.resolve()) + "/"
    first, last = steady
    seconds = max(last - first, 1e-9)
    whole: dict[str, Counter] = {}
    steady_counts: dict[str, Counter] = {}
    # a rank's part replaced durably (its temp file fsynced: a transition) or not (a
    # heartbeat, a refresh after a metric flush)
    part_writes: dict[str, dict[str, Counter]] = {
        scope: {"durable": Counter(), "not fsynced": Counter()} for scope in ("whole", "steady")
    }
    fsynced: set[str] = set()
    others: set[str] = set()
    for t, op, path, nbytes, source in events:
        if not path.startswith(base):
            continue
        if op == "fsync":
            fsynced.add(path)
        rel = path[len(base) :]
        kind = kind_of(rel, root)
        if kind == "other":
            others.add(rel)
        name = rel.rsplit("/", 1)[-1]
        temp = name.startswith(".") and name.endswith(".tmp")
        if op == "write":
            op = (
                "temp file writes" if temp else "appends" if ".jsonl" in name else "in-place writes"
            )
        label = {
            "rename": "replacements",
            "link": "links",
            "create": "creates",
            "open": "opens for writing",
            "fsync": "fsyncs",
            "unlink": "unlinks",
            "mkdir": "mkdirs",
        }.get(op, op)
        for scope, in_scope in (("whole", True), ("steady", first <= t <= last)):
            if not in_scope:
                continue
            table = whole if scope == "whole" else steady_counts
            row = table.setdefault(kind, Counter())
            row[label] += 1
            row["bytes written"] += nbytes
            if op == "rename" and kind == "rank parts":
                found = _RANK.search(name)
                if found:
                    how = "durable" if source in fsynced else "not fsynced"
                    part_writes[scope][how][int(found.group(1))] += 1
    per_s = {
        kind: {
            label: round(n / seconds, 3)
            for label, n in row.items()
            if label in ("replacements", "appends", "links", "fsyncs", "bytes written")
        }
        for kind, row in steady_counts.items()
    }
    return {
        "whole_job": {k: dict(v) for k, v in sorted(whole.items())},
        "steady_phase_s": round(seconds, 2),
        "steady_counts": {k: dict(v) for k, v in sorted(steady_counts.items())},
        "steady_per_s": dict(sorted(per_s.items())),
        # median over the ranks other than 0
        "part_replacements_per_rank": {
            scope: {
                how: statistics.median(c.get(r, 0) for r in set().union(*by.values())) if c else 0
                for how, c in by.items()
            }
            for scope, by in part_writes.items()
        },
        "other_paths": sorted(others)[:20],
    }


# -- the readers on the finished run ------------------------------------------------


def cli(root: Path, *args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "otel_tracker.cli", "--root", str(root), *args],
        check=True,
        capture_output=True,
    )


def readers(root: Path, repeat: int) -> dict[str, float]:
    from otel_tracker.history.store import RunStore

    return {
        "python -c pass": median_s(
            lambda: subprocess.run([sys.executable, "-c", "pass"], check=True), repeat
        ),
        "otel-tracker show latest": median_s(lambda: cli(root, "show", "latest"), repeat),
        "otel-tracker list": median_s(lambda: cli(root, "list"), repeat),
        STORE_LIST: median_s(lambda: RunStore.open(root).list(), repeat),
    }


def single_run(root: Path, args: argparse.Namespace) -> None:
    """The same steps as one process's run (no launcher): the readers' comparison."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(OTEL_TRACKER_ROOT=str(root), PYTHONPATH=str(REPO))
    names = [f"step {i + 1}" for i in range(args.steps)]
    code = (
        "import otel_tracker\n"
        f"with otel_tracker.track_run('bench-ddp', steps={names!r}, progress='off') as run:\n"
        f"    for name in {names!r}:\n"
        f"        with run.step(name, total={args.batches}, unit='batch') as step:\n"
        f"            for b in range({args.batches}):\n"
        "                run.log('loss', 1.0 / (b + 1), step=b)\n"
        "                step.advance()\n"
    )
    subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True)


def inventory(run_dir: Path) -> dict[str, Any]:
    """The run directory's files and bytes, by who owns them."""
    groups: dict[str, dict[str, int]] = {}
    part_sizes = []
    for path in run_dir.rglob("*"):
        if not path.is_file():
            continue
        rel = path.relative_to(run_dir)
        size = path.stat().st_size
        if rel.parts[0] == "parts" and _RANK.search(rel.name):
            group = "per rank (parts/)"
            if rel.name.endswith(".json") and rel.name.startswith("rank-"):
                part_sizes.append(size)
        elif rel.parts[0] == "hosts":
            group = "per host (hosts/)"
        elif rel.name.startswith("summary"):
            group = "summary files (rank 0, at the end)"
        else:
            group = "rank 0's record"
        row = groups.setdefault(group, {"files": 0, "bytes": 0})
        row["files"] += 1
        row["bytes"] += size
    return {
        "files": sum(g["files"] for g in groups.values()),
        "bytes": sum(g["bytes"] for g in groups.values()),
        "by_owner": dict(sorted(groups.items())),
        "rank_part_bytes_median": int(statistics.median(part_sizes)) if part_sizes else 0,
        "manifest_bytes": (run_dir / "manifest.json").stat().st_size,
    }


def only_run(root: Path) -> Path:
    runs = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]
    if len(runs) != 1:
        raise SystemExit(f"{root}: {len(runs)} runs, expected one")
    return runs[0]


def job_outcome(root: Path) -> dict[str, Any]:
    from otel_tracker.history.store import RunStore

    (view,) = RunStore.open(root).list()
    job = view.doc.get("job") or {}
    return {
        "status": view.status,
        "ranks": len(job.get("ranks") or []),
        "hosts": len(job.get("hosts") or []),
        "counts": job.get("counts"),
    }


# -- on paper -------------------------------------------------------------------------


def on_paper(result: dict[str, Any]) -> dict[str, Any]:
    """4,096 ranks on 512 hosts, from the measured per-rank and per-host figures.

    Linear in the ranks (parts, summary files, the readers' extra cost over a
    single-process run) or in the hosts (telemetry); the part writes follow the
    product's own heartbeat (``rank_heartbeat``) and the measured refresh rate."""
    from otel_tracker.config import DEFAULT_HEARTBEAT_S, DEFAULT_SAMPLE_INTERVAL_S
    from otel_tracker.record.job import rank_flush_interval, rank_heartbeat

    ranks, hosts = PAPER_HOSTS * PAPER_PER_HOST, PAPER_HOSTS
    world, our_hosts = result["world_size"], result["hosts"]
    inv = result["run_directory"]
    heartbeat = rank_heartbeat(ranks, DEFAULT_HEARTBEAT_S)
    part_bytes = inv["rank_part_bytes_median"]
    none = {"files": 0, "bytes": 0}
    groups = inv["by_owner"]
    per_rank = groups.get("per rank (parts/)", none)
    per_host = groups.get("per host (hosts/)", none)
    summary = groups.get("summary files (rank 0, at the end)", none)
    own = groups.get("rank 0's record", none)

    def scaled(field: str) -> int:
        return round(
            own[field]
            # the summary files are written once; their size follows the ranks
            + (summary[field] / world * ranks if field == "bytes" else summary[field])
            + per_rank[field] / (world - 1) * (ranks - 1)
            + per_host[field] / max(our_hosts - 1, 1) * (hosts - 1)
        )

    paper: dict[str, Any] = {
        "ranks": ranks,
        "hosts": hosts,
        "rank_heartbeat_s": heartbeat,
        "rank_part_bytes": part_bytes,
        "heartbeat_part_writes_per_rank_per_s": round(1 / heartbeat, 5),
        "heartbeat_part_writes_per_s": round((ranks - 1) / heartbeat, 2),
        "heartbeat_part_bytes_per_s": round((ranks - 1) / heartbeat * part_bytes),
        "naive_part_writes_per_s": ranks / NAIVE_INTERVAL_S,
        "naive_part_bytes_per_s": round(ranks / NAIVE_INTERVAL_S * part_bytes),
        "synchronized_transition_part_writes": ranks - 1,
        "synchronized_transition_part_bytes": (ranks - 1) * part_bytes,
        "telemetry_appends_per_s_at_the_sample_interval": hosts / DEFAULT_SAMPLE_INTERVAL_S,
        "summary_bytes_at_the_end": round(summary["bytes"] / world * ranks),
        "files_in_run_directory": scaled("files"),
        "bytes_in_run_directory": scaled("bytes"),
    }
    writes = result.get("writes")
    if writes:
        whole, steady_s = writes["whole_job"], writes["steady_phase_s"]
        telemetry = whole.get("telemetry", {})
        if telemetry.get("appends"):
            line = telemetry["bytes written"] / telemetry["appends"]
            paper["telemetry_bytes_per_append"] = round(line)
            paper["telemetry_bytes_per_s_at_the_sample_interval"] = round(
                hosts / DEFAULT_SAMPLE_INTERVAL_S * line
            )
        # a rank's part rewritten without fsync: its heartbeat, and a refresh after each
        # metric flush while it logs; at 4,096 ranks the heartbeat is 128 s, the refresh
        # follows run.log, not the number of ranks
        refreshed = writes["part_replacements_per_rank"]["steady"]["not fsynced"] / steady_s
        refresh = max(refreshed - 1 / rank_heartbeat(world, DEFAULT_HEARTBEAT_S), 0.0)
        paper["refresh_part_writes_per_rank_per_s_measured"] = round(refresh, 4)
        paper["part_writes_per_s_while_every_rank_logs"] = round(
            (ranks - 1) * (refresh + 1 / heartbeat), 1
        )
        # each rank appends once per flush interval while it logs (rank_flush_interval
        # scales it with the ranks): measured here, then at the on-paper world size
        metrics = writes["steady_per_s"].get("metrics", {})
        paper["metrics_appends_per_s_measured"] = round(metrics.get("appends", 0), 1)
        paper["metrics_appends_per_s_while_every_rank_logs"] = round(
            ranks / rank_flush_interval(ranks), 1
        )
    single = result["readers_s"]["single-process run"]
    job = result["readers_s"]["job"]
    for name in ("otel-tracker show latest", "otel-tracker list", STORE_LIST):
        extra = max(job[name] - single[name], 0.0) / (world - 1)
        paper[f"{name} (s, linear estimate)"] = round(single[name] + extra * (ranks - 1), 2)
    return paper


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=16)
    parser.add_argument("--per-host", type=int, default=4)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--step-seconds", type=float, default=3.0, help="sleep per step")
    parser.add_argument("--batches", type=int, default=10, help="per step")
    parser.add_argument(
        "--cpu-iterations", type=int, default=100_000, help="per step and rank (a Python loop)"
    )
    parser.add_argument("--repeat", type=int, default=3, help="untracked/tracked rounds")
    parser.add_argument("--readers-repeat", type=int, default=5)
    parser.add_argument("--no-strace", action="store_true", help="skip the writes' count")
    parser.add_argument("--output", default="benchmarks/results/distributed.json")
    args = parser.parse_args(argv)
    if args.hosts > 1 and (os.geteuid() != 0 or shutil.which("unshare") is None):
        parser.error("several hosts need root and unshare (--hosts 1 runs without)")
    traced = not args.no_strace and shutil.which("strace") is not None
    world = args.hosts * args.per_host
    began = time.monotonic()
    result: dict[str, Any] = {
        "hosts": args.hosts,
        "per_host": args.per_host,
        "world_size": world,
        "steps": args.steps,
        "step_seconds": args.step_seconds,
        "batches": args.batches,
        "cpu_iterations": args.cpu_iterations,
        "repeat": args.repeat,
        "cpus": os.cpu_count(),
    }
    with tempfile.TemporaryDirectory(prefix="otel-tracker-bench-dist-") as tmp:
        work = Path(tmp)
        (work / "rank.py").write_text(RANK_SCRIPT)
        rounds: dict[str, list[dict[str, Any]]] = {"untracked": [], "tracked": []}
        last_root = None
        for i in range(args.repeat):
            order = ("untracked", "tracked") if i % 2 == 0 else ("tracked", "untracked")
            for mode in order:
                root = work / f"runs-{mode}-{i}"
                found = run_job(work, root, f"{mode}-{i}", args, tracked=mode == "tracked")
                rounds[mode].append(found)
                print(
                    f"  round {i + 1} {mode:9s} job {found['job_wall_s']:6.2f} s, rank median "
                    f"{found['rank_wall_median_s']:6.2f} s, max {found['rank_wall_max_s']:6.2f} s",
                    flush=True,
                )
                if mode == "tracked":
                    last_root = root
                    found["outcome"] = job_outcome(root)
                else:
                    shutil.rmtree(root, ignore_errors=True)
        result["rounds"] = rounds
        figures = (
            "job_wall_s",
            "rank_wall_median_s",
            "rank_wall_max_s",
            "start_median_s",
            "steps_median_s",
            "exit_median_s",
            "rank0_exit_s",
            "job_cpu_s",
            "rank_cpu_median_s",
            "rank_cpu_in_steps_median_s",
        )
        medians = {
            mode: {f: round(statistics.median(r[f] for r in rs), 3) for f in figures}
            for mode, rs in rounds.items()
        }
        result["wall_s"] = medians
        result["overhead"] = {
            f: {
                "seconds": round(medians["tracked"][f] - medians["untracked"][f], 3),
                # none for a phase that takes no time untracked
                "percent": round(100 * (medians["tracked"][f] / medians["untracked"][f] - 1), 2)
                if medians["untracked"][f] >= 0.05
                else None,
            }
            for f in figures
        }
        result["outcome"] = rounds["tracked"][-1]["outcome"]
        assert last_root is not None
        run_dir = only_run(last_root)
        result["run_directory"] = inventory(run_dir)
        single_root = work / "runs-single"
        single_run(single_root, args)
        result["readers_s"] = {
            "job": readers(last_root, args.readers_repeat),
            "single-process run": readers(single_root, args.readers_repeat),
        }
        if traced:
            root = work / "runs-strace"
            trace = work / "strace"
            found = run_job(work, root, "strace", args, tracked=True, strace_to=trace)
            writes = count_writes(strace_events(trace), root, found["steady"])
            steady_s = writes["steady_phase_s"]
            replacements = sum(
                row.get("replacements", 0) for row in writes["steady_counts"].values()
            )
            appends = sum(row.get("appends", 0) for row in writes["steady_counts"].values())
            writes["steady_replacements_per_s"] = round(replacements / steady_s, 3)
            writes["steady_appends_per_s"] = round(appends / steady_s, 3)
            writes["naive_part_writes"] = round(world * steady_s / NAIVE_INTERVAL_S)
            writes["naive_part_writes_per_s"] = world / NAIVE_INTERVAL_S
            writes["job_wall_s_under_strace"] = round(found["job_wall_s"], 2)
            writes["steps_median_s_under_strace"] = round(found["steps_median_s"], 2)
            writes["outcome"] = job_outcome(root)
            result["writes"] = writes
            shutil.rmtree(trace, ignore_errors=True)
        else:
            result["writes"] = None
        result["on_paper"] = on_paper(result)
    result["benchmark_s"] = round(time.monotonic() - began, 1)
    _print(result)
    save(result, args.output)
    return 0


def _print(r: dict[str, Any]) -> None:
    print(
        f"{r['world_size']} ranks = {r['hosts']} hosts x {r['per_host']}, {r['steps']} steps of "
        f"{r['step_seconds']:g} s, {r['cpus']} CPUs; medians of {r['repeat']} alternating rounds"
    )
    print(f"  {'':30s} {'untracked':>10s} {'tracked':>10s} {'overhead':>18s}")
    for figure, un in r["wall_s"]["untracked"].items():
        tr = r["wall_s"]["tracked"][figure]
        over = r["overhead"][figure]
        percent = "" if over["percent"] is None else f"{over['percent']:+7.1f}%"
        print(f"  {figure:30s} {un:9.2f}s {tr:9.2f}s {over['seconds']:+8.2f}s {percent}")
    print(f"  tracked job's outcome: {r['outcome']}")
    inv = r["run_directory"]
    print(
        f"  run directory: {inv['files']} files, {inv['bytes']:,} B; manifest "
        f"{inv['manifest_bytes']:,} B, a rank's part {inv['rank_part_bytes_median']:,} B"
    )
    for owner, row in inv["by_owner"].items():
        print(f"    {owner:36s} {row['files']:5d} files {row['bytes']:>12,d} B")
    for target, figures in r["readers_s"].items():
        for name, value in figures.items():
            print(f"  readers, {target:20s} {name:40s} {value:7.3f} s")
    writes = r["writes"]
    if writes:
        print(
            f"  under strace: job {writes['job_wall_s_under_strace']:.2f} s, steps "
            f"{writes['steps_median_s_under_strace']:.2f} s, outcome {writes['outcome']}"
        )
        print("  writes under the root, whole job, by kind:")
        for kind, row in writes["whole_job"].items():
            print(f"    {kind:12s} {dict(row)}")
        print(f"  steady phase {writes['steady_phase_s']} s, per second:")
        for kind, row in writes["steady_per_s"].items():
            print(f"    {kind:12s} {row}")
        print(
            f"  steady: {writes['steady_replacements_per_s']} replacements/s, "
            f"{writes['steady_appends_per_s']} appends/s; naive design "
            f"{writes['naive_part_writes_per_s']} part writes/s "
            f"({writes['naive_part_writes']} over the same seconds)"
        )
        print(f"  part replacements per rank: {writes['part_replacements_per_rank']}")
        if writes["other_paths"]:
            print(f"  other paths: {writes['other_paths']}")
    print(f"  on paper, {r['on_paper']['ranks']} ranks on {r['on_paper']['hosts']} hosts:")
    for name, value in r["on_paper"].items():
        print(f"    {name:60s} {value}")
    print(f"  benchmark took {r['benchmark_s']} s")


if __name__ == "__main__":
    sys.exit(main())
