"""``list --columns/--sort/--where`` and ``compare`` over runs that logged series."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from otel_tracker import track_run
from tests.helpers import child_env, otel_cli, run_script


@pytest.fixture
def sweep(root: Path) -> list[str]:
    """Three runs of one pipeline with different learning rates, and one other run."""
    ids = []
    for lr in (0.1, 0.01, 0.001):
        with track_run(
            "sweep",
            root=root,
            steps=["fit"],
            params={"lr": lr, "optimizer": {"name": "adam"}},
            progress="off",
            resources=False,
            install_signal_handlers=False,
        ) as run:
            run.log({}, direction={"loss": "min"})
            with run.step("fit") as step:
                for epoch in range(5):
                    step.log({"acc": 0.9 - 5 * lr + epoch / 100, "loss": lr + 1 / (epoch + 1)})
        ids.append(run.run_id)
    with track_run("other", root=root, progress="off", resources=False) as run:
        pass  # no params, no series
    return ids


def test_list_shows_sorts_and_filters_by_params_and_metrics(root: Path, sweep: list[str]) -> None:
    listed = otel_cli(root, "list", "--columns", "acc,loss.best,params.lr", "--sort=-acc")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].split()[-3:] == ["acc", "loss.best", "params.lr"]
    order = [line.split()[0] for line in lines[1:]]
    assert order[:3] == [sweep[2], sweep[1], sweep[0]]  # highest acc first
    assert lines[-1].split()[-3:] == ["-", "-", "-"]  # the run without them, last
    kept = otel_cli(
        root, "list", "--where", "params.lr < 0.05 and acc > 0.87", "--json", "--columns", "acc"
    )
    rows = json.loads(kept.stdout)
    assert sorted(r["run_id"] for r in rows) == sorted(sweep[1:])
    assert all(r["fields"]["acc"] > 0.87 for r in rows)
    bad = otel_cli(root, "list", "--where", "acc >")
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.strip().count("\n") == 0 and "otel-tracker: error: --where" in bad.stderr
    assert listed.stderr == "" and kept.stderr == ""  # every field exists somewhere
    typo = otel_cli(root, "list", "--where", "loss.bset < 1 or params.lr > 0", "--sort=-acc")
    assert typo.returncode == 0 and len(typo.stdout.splitlines()) == 4  # params.lr still works
    warned = typo.stderr.splitlines()
    assert len(warned) == 1 and "no run has the field 'loss.bset'" in warned[0], typo.stderr
    column = otel_cli(root, "list", "--columns", "params.lrr")
    assert "no run has the field 'params.lrr'" in column.stderr


def test_compare_puts_runs_side_by_side(root: Path, sweep: list[str]) -> None:
    text = otel_cli(root, "compare", sweep[0], sweep[2])
    assert text.returncode == 0, text.stderr
    rows = {line.split()[0]: line.split()[1:] for line in text.stdout.splitlines() if line.strip()}
    assert rows["params.lr"] == ["0.1", "0.001"]
    assert rows["loss.best"] == ["0.3", "0.201"]
    assert "step" in rows and 'same params: optimizer.name="adam"' in text.stdout
    data = json.loads(otel_cli(root, "compare", *sweep, "--format", "json").stdout)
    assert data["params_differ"] == {"lr": [0.1, 0.01, 0.001]}
    assert data["params_same"] == {"optimizer.name": "adam"}
    assert [m["count"] for m in data["metrics"]["acc"]] == [5, 5, 5]
    assert list(data["steps"]) == ["fit"] and all(d is not None for d in data["steps"]["fit"])
    markdown = otel_cli(root, "compare", *sweep[:2], "--format", "markdown").stdout
    assert markdown.splitlines()[1] == "|---|---|---|" and "| params.lr | 0.1 | 0.01 |" in markdown
    one = otel_cli(root, "compare", sweep[0])
    assert one.returncode == 2 and "two runs or more" in one.stderr


def test_series_export_as_csv_and_json_and_into_a_closed_pipe(
    root: Path, sweep: list[str], tmp_path: Path
) -> None:
    done = otel_cli(root, "export", sweep[0], "--series", "--output", str(tmp_path / "s.csv"))
    assert done.returncode == 0 and "wrote 10 points" in done.stdout, done.stderr
    lines = (tmp_path / "s.csv").read_text().splitlines()
    assert lines[0] == "key,stage,step,value,time"
    acc = [line.split(",") for line in lines[1:] if line.startswith("acc,")]
    assert [(row[1], row[2]) for row in acc] == [("fit", str(n)) for n in range(5)]
    data = json.loads(
        otel_cli(root, "export", sweep[0], "--series", "--format", "json", "-o", "-").stdout
    )
    assert data["series"]["loss"]["step"] == [0, 1, 2, 3, 4]
    assert data["series"]["loss"]["value"][0] == pytest.approx(1.1)
    streamed = otel_cli(root, "export", sweep[0], "--series", "--format", "jsonl", "-o", "-")
    points = [json.loads(line) for line in streamed.stdout.splitlines()]
    assert len(points) == 10 and {p["key"] for p in points} == {"acc", "loss"}
    loss = [p for p in points if p["key"] == "loss"]
    assert [p["step"] for p in loss] == [0, 1, 2, 3, 4] and loss[0]["stage"] == "fit"
    assert loss[0]["value"] == pytest.approx(1.1) and isinstance(loss[0]["time"], float)
    bad = otel_cli(root, "export", sweep[0], "--format", "csv", "-o", "-")
    assert bad.returncode == 2 and "--format csv is for --series" in bad.stderr
    nowhere = otel_cli(root, "export", sweep[0], "--series", "-o", str(tmp_path / "no" / "s.csv"))
    assert nowhere.returncode == 2 and "otel-tracker: error: cannot write" in nowhere.stderr
    # a reader that goes away after one line (`| head -1`): no traceback
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "otel_tracker.cli",
            "--root",
            str(root),
            "export",
            sweep[0],
            "--series",
            "-o",
            "-",
        ],
        env=child_env(root),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline() == b"key,stage,step,value,time\n"
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) in (0, 141) and "Traceback" not in err, err


def test_compare_shows_each_steps_resources(root: Path) -> None:
    """Per step, the CPU and memory the run's processes used, from the real sampler:
    a step that holds 200 MiB more than the other run's shows it (each run in a fresh
    interpreter, so nothing else of the test's process is measured)."""
    ids = []
    for extra_mib in (0, 200):
        code = f"""
import time
from otel_tracker import track_run
with track_run("mem", steps=["load", "fit"], progress="off", sample_interval=0.1) as run:
    with run.step("load"):
        time.sleep(0.3)
    with run.step("fit"):
        held = bytearray({extra_mib} * 2**20)
        held[::4096] = b"x" * len(held[::4096])  # touch every page
        time.sleep(1.0)
        del held
print(run.run_id)
"""
        done = run_script(code, root)
        assert done.returncode == 0, done.stderr
        ids.append(done.stdout.strip())
    done = otel_cli(root, "compare", *ids, "--format", "json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    fit = [r["memory_max_bytes"] for r in data["step_resources"]["fit"]]
    assert all(isinstance(m, (int, float)) for m in fit), data["step_resources"]
    assert fit[1] - fit[0] > 150 * 2**20, fit
    assert all(isinstance(r["cpu_mean"], float) for r in data["step_resources"]["load"])
    text = otel_cli(root, "compare", *ids).stdout
    assert "step fit memory max" in text and "step load cpu mean" in text, text
