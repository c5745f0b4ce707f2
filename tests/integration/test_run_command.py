"""`otel-tracker run -- CMD`: real children, real signals, real logs."""

from __future__ import annotations

import itertools
import json
import os
import resource
import signal
import sys
import time
from pathlib import Path

from otel_tracker.timeparse import parse_timestamp
from tests.helpers import (
    load_manifest,
    manifests,
    only_manifest,
    otel_cli,
    read_when,
    wait_for,
    wrap,
)


def test_exit_code_and_logs(root: Path) -> None:
    code = "import sys; print('to stdout'); print('to stderr', file=sys.stderr); sys.exit(3)"
    proc = wrap(
        root, sys.executable, "-c", code, options=("--name", "etl", "--scenario", "nightly")
    )
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 3
    assert out == "to stdout\n" and "to stderr" in err  # teed to the console
    doc = only_manifest(root)
    assert (doc["name"], doc["scenario"], doc["status"], doc["exit_code"]) == (
        "etl",
        "nightly",
        "failed",
        3,
    )
    assert (
        doc["steps"][0]["status"] == "failed"
        and "exited with code 3" in doc["steps"][0]["error"]["message"]
    )
    # the step's note is a message for the user, not an internal class path
    assert doc["steps"][0]["error"]["type"] == "CommandFailed"
    shown = otel_cli(root, "show", "latest").stdout
    assert "CommandFailed: command exited with code 3" in shown
    assert "otel_tracker.launch.command" not in shown
    logs = Path(doc["run_dir"]) / "logs"
    assert (logs / "stdout.log").read_text() == "to stdout\n"
    assert (logs / "stderr.log").read_text() == "to stderr\n"
    assert sorted(Path(a["path"]).name for a in doc["artifacts"]) == ["stderr.log", "stdout.log"]


def test_success_and_trace_context_reach_the_child(root: Path) -> None:
    code = "import os; print(os.environ['TRACEPARENT']); print(os.environ['OTEL_TRACKER_RUN_DIR'])"
    proc = wrap(root, sys.executable, "-c", code)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    traceparent, run_dir = out.split()
    doc = only_manifest(root)
    assert doc["status"] == "completed" and doc["steps"][0]["status"] == "completed"
    _version, trace_id, span_id, _flags = traceparent.split("-")
    assert trace_id == doc["trace"]["trace_id"]
    assert span_id == doc["steps"][0]["span_id"]  # the child's spans would nest under the step
    assert run_dir == doc["run_dir"]


def test_sigterm_is_forwarded_and_the_record_is_final(root: Path) -> None:
    code = "import time\nprint('ready', flush=True)\nwhile True: time.sleep(0.05)"
    proc = wrap(root, sys.executable, "-c", code)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 143
    doc = wait_for(read_when(root, lambda d: d["status"] != "running"), what="final manifest")
    assert (doc["status"], doc["signal"], doc["exit_code"]) == ("cancelled", "SIGTERM", 143)
    assert doc["steps"][0]["status"] == "failed"


# Burns 1 s of CPU between samples of the wrapper's sampler: it starts once the run's
# telemetry.jsonl has a first sample, and exits two samples after it stops.
BURN_BETWEEN_SAMPLES = """
import os, time
from pathlib import Path
telemetry = Path(os.environ["OTEL_TRACKER_RUN_DIR"]) / "telemetry.jsonl"
def samples():
    try:
        return telemetry.read_bytes().count(b"\\n")
    except FileNotFoundError:
        return 0
def wait_for_samples(n):
    deadline = time.monotonic() + 60
    while samples() < n:
        if time.monotonic() > deadline:
            raise SystemExit(3)
        time.sleep(0.01)
wait_for_samples(1)
start = time.process_time()
while time.process_time() - start < 1.0:
    pass
print(time.process_time() - start, flush=True)
wait_for_samples(samples() + 2)
"""


def test_the_child_tree_is_sampled(root: Path) -> None:
    """The CPU the wrapper's sampler saw (utilization x interval x cores, summed over
    telemetry.jsonl) covers the CPU time the child says it burnt, and is no more than
    the kernel charged the whole tree (issue 22 item 6: this once asked for half a
    core, which a loaded machine does not give)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = wrap(
        root, sys.executable, "-c", BURN_BETWEEN_SAMPLES, options=("--sample-interval", "0.2")
    )
    out, err = proc.communicate(timeout=120)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert proc.returncode == 0, err
    burnt = float(out.split()[0])
    charged = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    doc = only_manifest(root)
    assert doc["telemetry"]["run"]["otel_tracker.process.count"]["max"] >= 2  # wrapper, child
    cores = doc["environment"]["cpu_count"]
    lines = [
        json.loads(line)
        for line in (Path(doc["run_dir"]) / "telemetry.jsonl").read_text().splitlines()
    ]
    seen = 0.0
    for previous, line in itertools.pairwise(lines):
        utilization = line["points"].get("process.cpu.utilization")
        if utilization is not None:
            interval = parse_timestamp(line["t"]) - parse_timestamp(previous["t"])
            seen += utilization * interval * cores
    slack = 0.05 + 0.002 * cores * len(lines)  # clock ticks; millisecond timestamps
    assert burnt - slack <= seen <= charged + slack, (burnt, seen, charged)


def test_bad_commands_are_one_line_errors_and_leave_no_run(root: Path, tmp_path: Path) -> None:
    not_executable = tmp_path / "script.sh"
    not_executable.write_text("echo hi\n")
    for command, message, status in (
        (("no-such-command-xyz",), "command not found on PATH: no-such-command-xyz", 127),
        ((str(tmp_path / "missing.sh"),), "command not found", 127),
        ((str(not_executable),), "not an executable file", 126),
        ((str(tmp_path),), "not an executable file", 126),
        ((), "no command given", 2),
    ):
        proc = wrap(root, *command)
        _out, err = proc.communicate(timeout=60)
        assert proc.returncode == status, (command, err)
        assert err.startswith("otel-tracker: error: ") and err.count("\n") == 1
        assert message in err
        assert "Traceback" not in err
    assert manifests(root) == []


def test_run_listing_shows_wrapped_runs(root: Path) -> None:
    proc = wrap(root, sys.executable, "-c", "pass", options=("--name", "tiny"))
    proc.communicate(timeout=60)
    listing = otel_cli(root, "list", "--json")
    (row,) = json.loads(listing.stdout)
    assert (row["name"], row["status"], row["steps_completed"]) == ("tiny", "completed", 1)
    load_manifest(Path(row["run_dir"]) / "manifest.json")


def test_artifacts_the_command_leaves_are_registered(root: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "stale.ckpt").write_bytes(b"old")
    os.utime(work / "stale.ckpt", (time.time() - 7200, time.time() - 7200))
    code = (
        "import os, pathlib\n"
        "pathlib.Path('tb/run1').mkdir(parents=True)\n"
        "pathlib.Path('tb/run1/events.out.tfevents.1.host').write_bytes(b'e')\n"
        "pathlib.Path('model.pt').write_bytes(b'w' * 1000)\n"
    )
    proc = wrap(root, sys.executable, "-c", code, cwd=work)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    doc = only_manifest(root)
    kinds = {Path(a["path"]).name: (a["kind"], a["size_bytes"]) for a in doc["artifacts"]}
    assert kinds["model.pt"] == ("checkpoint", 1000)
    assert kinds["run1"][0] == "tensorboard"
    assert "stale.ckpt" not in kinds
    show = otel_cli(root, "show", "latest")
    assert "checkpoint" in show.stdout and "model.pt" in show.stdout


def test_a_child_that_opts_out_of_joining_still_joins_the_trace(root: Path) -> None:
    child_root = root.parent / "child-runs"
    code = (
        "from otel_tracker import track_run\n"
        f"with track_run('inner', root={str(child_root)!r}, progress='off', join=False) as run:\n"
        "    with run.step('work'):\n"
        "        pass\n"
    )
    proc = wrap(root, sys.executable, "-c", code)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    outer = only_manifest(root)
    inner = only_manifest(child_root)
    assert inner["trace"]["trace_id"] == outer["trace"]["trace_id"]
    assert inner["trace"]["parent_span_id"] == outer["steps"][0]["span_id"]


def test_with_tracking_off_the_command_still_runs_with_its_exit_status(root: Path) -> None:
    code = "import os, signal; print('ran'); os.kill(os.getpid(), signal.SIGTERM)"
    proc = wrap(root, sys.executable, "-c", code, OTEL_TRACKER_DISABLED="true")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert out == "ran\n" and "Traceback" not in err
    assert not root.exists()


def test_wrapper_mirrors_to_otlp_prometheus_and_tensorboard(root: Path) -> None:
    import urllib.request

    from tensorboard.backend.event_processing import event_accumulator

    from tests.otlp_receiver import OtlpHttpReceiver

    receiver = OtlpHttpReceiver()
    try:
        proc = wrap(
            root,
            sys.executable,
            "-c",
            "import time; time.sleep(2.5)",
            options=(
                "--name",
                "mirrored-cmd",
                "--sample-interval",
                "0.2",
                "--otlp",
                receiver.endpoint,
                "--prometheus",
                "0",
                "--tensorboard",
            ),
            OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
        )
        live = wait_for(
            read_when(root, lambda d: d["telemetry"] is not None and d["telemetry"]["samples"]),
            what="a live manifest with samples",
        )
        url = live["tracker"]["mirrors"]["prometheus"]["url"]
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(url, timeout=5) as response:
            exposition = response.read().decode()
        assert f'cicd_pipeline_run_id="{live["run_id"]}"' in exposition
        assert "process_memory_usage_bytes{" in exposition
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    finally:
        receiver.close()
    doc = only_manifest(root)
    spans = {s["name"] for s in receiver.received.spans}
    assert spans == {"RUN mirrored-cmd", Path(sys.executable).name}, spans  # run + its one step
    assert "process.memory.usage" in receiver.received.metric_names()
    events = list((Path(doc["run_dir"]) / "tensorboard").glob("events.out.tfevents.*"))
    accumulator = event_accumulator.EventAccumulator(str(events[0]))
    accumulator.Reload()
    step_name = Path(sys.executable).name
    assert f"step/{step_name}/duration_s" in accumulator.Tags()["scalars"]
    assert "process.cpu.utilization" in accumulator.Tags()["scalars"]


def test_a_tracked_child_joins_the_wrappers_trace_at_the_collector(root: Path) -> None:
    from tests.otlp_receiver import OtlpGrpcReceiver

    child = (
        "from otel_tracker import track_run\n"
        "with track_run('inner', steps=['fit'], progress='off') as run:\n"
        "    with run.step('fit') as step:\n"
        "        step.advance()\n"
    )
    receiver = OtlpGrpcReceiver()
    try:
        proc = wrap(
            root,
            sys.executable,
            "-c",
            child,
            options=("--name", "outer", "--otlp", receiver.endpoint, "--sample-interval", "0.2"),
        )
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    finally:
        receiver.close()
    spans = {s["name"]: s for s in receiver.received.spans}
    assert set(spans) == {"RUN outer", Path(sys.executable).name, "RUN inner", "fit"}, err
    outer, wrapped_step = spans["RUN outer"], spans[Path(sys.executable).name]
    assert {s["trace_id"] for s in spans.values()} == {outer["trace_id"]}
    assert wrapped_step["parent_span_id"] == outer["span_id"]
    assert spans["RUN inner"]["parent_span_id"] == wrapped_step["span_id"]
    assert spans["fit"]["parent_span_id"] == spans["RUN inner"]["span_id"]
    # two processes, two resources: each names its own run and pid
    assert spans["RUN inner"]["resource"]["process.pid"] != outer["resource"]["process.pid"]
    assert spans["RUN inner"]["resource"]["cicd.pipeline.name"] == "inner"


def test_a_python_script_names_the_run_after_itself(root: Path, tmp_path: Path) -> None:
    """``run -- python train.py`` and ``run -- python eval.py`` are two pipelines with
    two histories, not two runs of ``python``."""
    for script in ("train", "eval"):
        (tmp_path / f"{script}.py").write_text("print('ok')\n")
        done = otel_cli(root, "run", "--", sys.executable, str(tmp_path / f"{script}.py"))
        assert done.returncode == 0, done.stderr
    names = sorted(json.loads(p.read_text())["name"] for p in root.glob("*/manifest.json"))
    assert names == ["eval", "train"]
