"""Child processes that track runs of their own join the launcher's run and trace."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest

from otel_tracker.history.store import RunStore
from tests.helpers import load_manifest, only_manifest, otel_cli, validate_manifest, wrap
from tests.otlp_receiver import OtlpGrpcReceiver

CHILD = """
import os, sys, time
from otel_tracker import track_run
with track_run("trainer", steps=["load", "fit"], progress="off") as run:
    with run.step("load") as step:
        step.advance(3)
    with run.step("fit") as step:
        step.set_total(5, unit="epochs")
        for _ in range(5):
            step.advance()
        if sys.argv[1:] == ["die"]:
            os.kill(os.getpid(), 9)
print("PART", run.manifest_path, flush=True)
"""


def _script(tmp: Path, name: str, code: str) -> str:
    path = tmp / name
    path.write_text(textwrap.dedent(code))
    return str(path)


def test_a_tracked_child_becomes_steps_of_the_wrapping_step(root: Path, tmp_path: Path) -> None:
    receiver = OtlpGrpcReceiver()
    try:
        proc = wrap(
            root,
            sys.executable,
            _script(tmp_path, "child.py", CHILD),
            options=("--name", "wrapper", "--otlp", receiver.endpoint),
        )
        out, err = proc.communicate(timeout=60)
    finally:
        receiver.close()
    assert proc.returncode == 0, err
    # one run: the child wrote a part file inside the wrapper's run, not a run of its own
    doc = only_manifest(root)
    run_dir = Path(doc["run_dir"])
    part_path = Path(out.split("PART", 1)[1].split()[0])
    assert part_path.parent == run_dir / "parts"
    part = load_manifest(part_path)
    assert part["run_id"] == doc["run_id"] and part["name"] == "trainer"
    assert part["trace"]["trace_id"] == doc["trace"]["trace_id"]
    wrapping = doc["steps"][0]
    assert part["part"]["parent_span_id"] == wrapping["span_id"]
    assert "telemetry" not in part or part["telemetry"] is None  # the wrapper samples the tree

    # the wrapper's final manifest embeds the child's steps, and a reader sees the same
    for view in (doc, RunStore.open(root).get("latest").doc):
        validate_manifest(view)
        subs = view["steps"][0]["substeps"]
        assert [(s["name"], s["status"]) for s in subs] == [
            ("load", "completed"),
            ("fit", "completed"),
        ]
        assert subs[1]["progress"]["completed"] == 5 and subs[1]["progress"]["total"] == 5
        assert {s["part"] for s in subs} == {part["part"]["id"]}
        [summary] = view["parts"]
        assert (summary["name"], summary["status"], summary["parent_step"]) == (
            "trainer",
            "completed",
            wrapping["name"],
        )
        assert summary["pid"] == part["process"]["pid"] and summary["steps"] == 2
    assert doc["steps_total"] == 1  # the run's own steps are unchanged

    # one trace: wrapper RUN > wrapper step > child RUN > child steps
    spans = {s["name"]: s for s in receiver.received.spans}
    assert {s["trace_id"] for s in spans.values()} == {doc["trace"]["trace_id"]}, spans
    child_run = spans["RUN trainer"]
    assert child_run["parent_span_id"] == wrapping["span_id"]
    for name in ("load", "fit"):
        step_span = next(s for n, s in spans.items() if n.endswith(name))
        assert step_span["parent_span_id"] == child_run["span_id"]

    shown = otel_cli(root, "show", "latest")
    assert shown.returncode == 0, shown.stderr
    assert "1.1" in shown.stdout and "1.2" in shown.stdout and "fit" in shown.stdout


def test_a_joined_childs_progress_lines_say_whose_they_are(root: Path, tmp_path: Path) -> None:
    # the child's progress mode comes from the environment it inherits, as usual
    script = _script(tmp_path, "child.py", CHILD.replace(', progress="off"', ""))
    proc = wrap(root, sys.executable, script, OTEL_TRACKER_PROGRESS="plain")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    lines = err.splitlines()
    assert "  [trainer] Step 2/2 – fit done" in err, err
    assert lines[0].startswith("Step 1/1 – ")  # the launcher's own lines are unchanged
    assert lines[-1].startswith("Run ") and "completed" in lines[-1]


def test_a_killed_child_reads_as_aborted_inside_a_failed_run(root: Path, tmp_path: Path) -> None:
    proc = wrap(root, sys.executable, _script(tmp_path, "child.py", CHILD), "die")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + 9, err
    view = RunStore.open(root).get("latest")
    assert view.status == "failed" and view.doc["signal"] == "SIGKILL"
    [summary] = view.doc["parts"]
    assert summary["status"] == "aborted"  # it was running when its process vanished
    subs = view.doc["steps"][0]["substeps"]
    assert [(s["name"], s["status"]) for s in subs] == [("load", "completed"), ("fit", "failed")]


SPAWNER = """
import subprocess, sys
child = '''
import sys
from otel_tracker import track_run
n = int(sys.argv[1])
with track_run(f"worker {n}", steps=[f"w{n} s{i}" for i in range(20)], progress="off") as run:
    for i in range(20):
        with run.step(f"w{n} s{i}") as step:
            step.advance()
    run.add_count("items", n + 1)  # a joined child samples nothing: still recorded
    run.set_gauge("worker", n)
'''
procs = [subprocess.Popen([sys.executable, "-c", child, str(n)]) for n in range(5)]
sys.exit(max(p.wait() for p in procs))
"""


def test_concurrent_children_lose_no_update(root: Path, tmp_path: Path) -> None:
    """Five processes write 100 steps at once into one run: each has its own part
    file, so none is lost and the wrapper's manifest never tears."""
    proc = wrap(root, sys.executable, _script(tmp_path, "spawner.py", SPAWNER))
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    doc = only_manifest(root)
    subs = doc["steps"][0]["substeps"]
    assert len(subs) == 100 and all(s["status"] == "completed" for s in subs)
    assert sorted(p["name"] for p in doc["parts"]) == [f"worker {n}" for n in range(5)]
    assert len({p["pid"] for p in doc["parts"]}) == 5
    # each child's counters add up to the run's (the writer merged them; a reader
    # merging again counts none twice); a gauge is one of theirs
    validate_manifest(doc)
    assert doc["user_metrics"]["counters"] == {"items": 15.0}
    assert doc["user_metrics"]["gauges"]["worker"] in range(5)
    shown = otel_cli(root, "show", doc["run_id"])
    assert "counter items" in shown.stdout and " 15\n" in shown.stdout, shown.stdout


def test_a_pipeline_step_running_a_wrapped_command_nests_two_levels(
    root: Path, tmp_path: Path
) -> None:
    """pipeline run > step > otel-tracker run (joins) > its step > tracked child (joins)."""
    child = _script(tmp_path, "child.py", CHILD)
    inner = [sys.executable, "-m", "otel_tracker.cli", "run", "--name", "inner", "--"]
    inner += [sys.executable, child]
    pipeline = tmp_path / "pipeline.toml"
    pipeline.write_text(
        textwrap.dedent(
            f"""
            name = "nested"
            [[steps]]
            name = "prepare"
            command = {json.dumps(inner)}
            """
        )
    )
    proc = otel_cli(root, "pipeline", "run", str(pipeline), OTEL_TRACKER_PROGRESS="off")
    assert proc.returncode == 0, proc.stderr
    doc = only_manifest(root)
    [outer_step] = doc["steps"]
    [inner_step] = outer_step["substeps"]  # the inner wrapper's one step
    assert [s["name"] for s in inner_step["substeps"]] == ["load", "fit"]
    assert sorted(p["name"] for p in doc["parts"]) == ["inner", "trainer"]
    assert all(p["status"] == "completed" for p in doc["parts"])


UNCHANGED_SCRIPT = """
import multiprocessing, os, sys, time
def work(n):
    return n * n
if __name__ == "__main__":
    print("auto:", os.environ.get("OTEL_TRACKER_AUTO"), "site:", os.environ.get("SITE_RAN"))
    with multiprocessing.get_context("spawn").Pool(2) as pool:  # plain Python children
        print(sum(pool.map(work, range(10))), flush=True)
    time.sleep(0.2)
    if "--fail" in sys.argv:
        raise ValueError("bad batch")
    if "--exit" in sys.argv:
        sys.exit(3)
"""


def test_auto_makes_an_unchanged_python_script_report_itself(root: Path, tmp_path: Path) -> None:
    script = _script(tmp_path, "train.py", UNCHANGED_SCRIPT)
    site = tmp_path / "site"  # the environment's own sitecustomize must still run
    site.mkdir()
    (site / "sitecustomize.py").write_text("import os\nos.environ['SITE_RAN'] = 'yes'\n")
    outcomes = {}
    for flag in ("", "--fail", "--exit"):
        proc = wrap(
            root,
            sys.executable,
            script,
            *([flag] if flag else []),
            options=("--auto", "--name", f"auto{flag}"),
            PYTHONPATH=str(site),
        )
        out, err = proc.communicate(timeout=60)
        view = RunStore.open(root).list(limit=1)[0]
        outcomes[flag] = (proc.returncode, out, err, view.doc)

    rc, out, err, doc = outcomes[""]
    assert rc == 0, err
    assert "auto: None site: yes" in out and "285" in out, out
    [sub] = doc["steps"][0]["substeps"]
    assert (sub["name"], sub["status"]) == ("train.py", "completed")
    [part] = doc["parts"]  # the spawned pool workers did not report themselves
    assert part["name"] == "train.py" and part["pid"] != doc["process"]["pid"]

    rc, _, err, doc = outcomes["--fail"]
    assert rc == 1 and "ValueError: bad batch" in err
    sub = doc["steps"][0]["substeps"][0]
    assert sub["status"] == "failed" and sub["error"]["message"] == "bad batch"

    rc, _, err, doc = outcomes["--exit"]
    assert rc == 3, err
    assert doc["parts"][0]["exit_code"] == 3 and doc["parts"][0]["status"] == "failed"


def test_auto_leaves_a_command_that_is_not_python_alone(root: Path) -> None:
    proc = wrap(root, "sh", "-c", "echo plain", options=("--auto",))
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and out == "plain\n", err
    doc = only_manifest(root)
    assert "substeps" not in doc["steps"][0] and "parts" not in doc


@pytest.mark.slow
def test_the_reference_pipeline_file_runs_one_process_per_stage(root: Path, tmp_path: Path) -> None:
    from tests.helpers import REPO

    pipeline = tmp_path / "imitation_pipeline.toml"
    # the shipped file, run from a scratch directory instead of the repository root
    pipeline.write_text(
        (REPO / "examples" / "imitation_pipeline.toml")
        .read_text()
        .replace('cwd = ".."', 'cwd = "."')
    )
    proc = otel_cli(
        root, "pipeline", "run", str(pipeline), OTEL_TRACKER_PROGRESS="off", timeout=180
    )
    assert proc.returncode == 0, proc.stderr
    doc = only_manifest(root)
    assert doc["status"] == "completed" and doc["steps_completed"] == 5
    for step in doc["steps"]:
        [stage] = step["substeps"]  # the stage process reported its own step...
        assert stage["name"] == step["name"] and stage["status"] == "completed"
        assert stage["progress"]["completed"] > 0  # ...with its own progress
    assert len({p["pid"] for p in doc["parts"]}) == 5
    results = json.loads((tmp_path / "output" / "imitation-stages" / "evaluation.json").read_text())
    assert results["expert"]["mean_cost"] < results["random"]["mean_cost"]
