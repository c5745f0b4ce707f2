"""``otel-tracker perf-test`` end to end: real worker processes, real runs, real files."""

from __future__ import annotations

import csv
import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest

from otel_tracker.schema import perf_test_results_schema
from tests.helpers import load_manifest, otel_cli, validate_manifest

BENCH = """
import time

def work(items=1000, seconds=0.02):
    time.sleep(seconds)   # the "work": a fixed time per call, so the figures are steady
    return items

def boom():
    raise ValueError("the benchmark broke")

def forever():
    time.sleep(600)

def recording(late=0, fps=42.0, seconds=0.01):
    from otel_tracker import current_run

    run = current_run()  # the scenario's run, which the worker joined
    time.sleep(seconds)
    run.add_count("deadline_exceeded_total", late)
    run.add_count("frames_total", 3)
    run.set_gauge("fps", fps)
    run.log({"loss": 0.25})
    return 3
"""


@pytest.fixture(autouse=True)
def _every_results_file_validates(tmp_path: Path) -> Iterator[None]:
    """Each perf_test_results.json a test here writes matches the published schema."""
    yield
    validator = jsonschema.Draft202012Validator(perf_test_results_schema())
    for path in tmp_path.rglob("perf_test_results.json"):
        validator.validate(json.loads(path.read_text()))


def scenario_file(tmp_path: Path, body: str, name: str = "scenarios.toml") -> Path:
    (tmp_path / "bench_mod.py").write_text(BENCH)
    path = tmp_path / name
    path.write_text('name = "smoke"\n' + body)
    return path


FAST = """
[[scenarios]]
name = "collect"
entry = "bench_mod:work"
args = { items = 1000, seconds = %s }
unit = "env steps"
repetitions = 4
warmup = 1
"""


def results(out: Path) -> dict:
    return json.loads((out / "perf_test_results.json").read_text())


def test_no_baseline_then_saved_baseline_then_a_slowed_scenario_is_a_regression(
    tmp_path: Path, root: Path
) -> None:
    out1, out2, out3 = tmp_path / "r1", tmp_path / "r2", tmp_path / "r3"
    fast = scenario_file(tmp_path, FAST % "0.02", "fast.toml")
    first = otel_cli(
        root, "perf-test", "--scenario", str(fast), "--output", str(out1), "--save-baseline"
    )
    assert first.returncode == 0, first.stderr
    assert "collect: throughput_p50" in first.stdout and "-> no-baseline" in first.stdout
    (entry,) = results(out1)["scenarios"]
    assert entry["verdict"] == "no-baseline" and entry["baseline"] is None
    assert entry["unit"] == "env steps/s"
    assert 30_000 < entry["value"] < 50_001  # 1000 items per ~0.02 s
    assert entry["metrics"]["latency_ms"]["samples"] == 4
    baseline = json.loads((root / "baselines" / "smoke--collect.json").read_text())
    assert baseline["scores"]["throughput_p50"]["median"] == entry["value"]
    assert baseline["hardware"] == results(out1)["hardware"]  # the class it was made on
    # the latency histogram: an SVG next to report.md, its bars adding up to the calls
    assert "![collect: latency per call](collect_latency.svg)" in (out1 / "report.md").read_text()
    assert sum(_bars(out1 / "collect_latency.svg")) == 4

    # each scenario is a tracked run like any other: manifest, steps, scores
    doc = validate_manifest(load_manifest(root / entry["run_id"] / "manifest.json"))
    assert (doc["name"], doc["scenario"], doc["kind"], doc["status"]) == (
        "smoke",
        "collect",
        "perf-test",
        "completed",
    )
    assert [(s["name"], s["progress"]["completed"]) for s in doc["steps"]] == [
        ("Warm-up", 1),
        ("Measure", 4),
    ]
    assert doc["scores"]["throughput_p50"]["latest"] == entry["value"]
    assert (root / entry["run_id"] / "summary.md").exists()

    # twice as slow per call: 50% below the baseline
    slow = scenario_file(tmp_path, FAST % "0.04", "slow.toml")
    second = otel_cli(root, "perf-test", "--scenario", str(slow), "--output", str(out2))
    assert second.returncode == 1, second.stdout + second.stderr
    (entry,) = results(out2)["scenarios"]
    assert entry["verdict"] == "regression" and entry["change"] > 0.4
    assert entry["baseline"]["source"].startswith("baseline smoke--collect revision 1")
    (finding,) = [r for r in entry["recommendations"] if r["id"] == "perf-regression"]
    assert finding["severity"] in ("warning", "critical") and "worse" in finding["detected"]
    report = (out2 / "report.md").read_text()
    assert "| collect | throughput_p50 |" in report and "regression" in report
    assert "`perf-regression`" in report and "## Environment" in report
    (row,) = csv.DictReader((out2 / "summary.csv").open())
    assert row["verdict"] == "regression" and row["scenario"] == "collect"
    metrics = json.loads((out2 / "collect_metrics.json").read_text())
    assert set(metrics["throughput"]) == {"mean", "p50", "p95", "p99", "min", "max", "samples"}
    env = json.loads((out2 / "environment.json").read_text())
    assert {"python", "platform", "cpu_count", "cpu_model", "gpus", "packages"} <= set(env)
    # the verdict is a gauge of the scenario's run: its metric mirrors carry it (the alert
    # rules in collector-config/ use it)
    run_doc = load_manifest(root / entry["run_id"] / "manifest.json")
    assert run_doc["telemetry"]["run"]["otel_tracker.user.perf_test.regression"]["max"] == 1
    assert run_doc["telemetry"]["run"]["otel_tracker.user.perf_test.change"]["max"] > 0.4

    # a previous results file is a baseline too; a looser tolerance lets the slow one pass
    third = otel_cli(
        root,
        "perf-test",
        "--scenario",
        str(slow),
        "--output",
        str(out3),
        "--baseline",
        str(out1 / "perf_test_results.json"),
        "--tolerance",
        "0.6",
    )
    assert third.returncode == 0, third.stdout + third.stderr
    (entry,) = results(out3)["scenarios"]
    assert entry["verdict"] == "pass" and entry["tolerance"] == 0.6
    assert entry["baseline"]["hardware"] == "same" and entry["notes"] == []


def test_baselines_are_keyed_by_hardware_class(tmp_path: Path, root: Path) -> None:
    fast = scenario_file(tmp_path, FAST % "0.01")
    out = [tmp_path / f"r{i}" for i in range(4)]

    def perf(i: int, *extra: str) -> tuple[int, str, dict]:
        proc = otel_cli(root, "perf-test", "--scenario", str(fast), "--output", str(out[i]), *extra)
        (entry,) = results(out[i])["scenarios"]
        return proc.returncode, proc.stdout, entry

    perf(0, "--save-baseline")
    plain = root / "baselines" / "smoke--collect.json"
    # a baseline from before hardware was recorded still loads: compared, with a note
    legacy = json.loads(plain.read_text())
    del legacy["hardware"]
    (tmp_path / "legacy.json").write_text(json.dumps(legacy))
    _, stdout, entry = perf(1, "--baseline", str(tmp_path / "legacy.json"))
    assert "baseline smoke--collect has no hardware record" in stdout
    assert entry["baseline"]["hardware"] == "unknown" and entry["change"] is not None
    # a baseline from another machine (forged here): compared, loudly
    forged = json.loads(plain.read_text())
    forged["hardware"].update(cpu_model="Forged CPU 9000", gpu_model="Forged GPU", gpu_count=8)
    plain.write_text(json.dumps(forged))
    _, stdout, entry = perf(2)
    assert "HARDWARE MISMATCH: baseline smoke--collect was recorded on Forged CPU 9000" in stdout
    assert "(another CPU model, GPU model, GPU count)" in stdout
    assert entry["baseline"]["hardware"] == "different" and entry["change"] is not None
    assert entry["verdict"] in ("pass", "regression", "improvement")
    assert "> **HARDWARE MISMATCH" in (out[2] / "report.md").read_text()
    # --strict-hardware: not compared, a failing verdict; the new baseline goes beside it
    code, stdout, entry = perf(3, "--strict-hardware", "--save-baseline")
    assert code == 1 and "collect: throughput_p50" in stdout and "-> hardware-mismatch" in stdout
    assert entry["verdict"] == "hardware-mismatch" and entry["change"] is None
    assert "--strict-hardware: not compared with that baseline" in entry["notes"]
    here = results(out[3])["hardware"]["id"]
    assert f"saved baseline smoke--collect--hw-{here} revision 1" in stdout
    assert json.loads(plain.read_text())["hardware"]["cpu_model"] == "Forged CPU 9000"
    # from now on this machine's own baseline judges it, strict or not
    out.append(tmp_path / "r4")
    _, stdout, entry = perf(4, "--strict-hardware")
    assert entry["baseline"]["hardware"] == "same" and entry["verdict"] != "hardware-mismatch"
    assert entry["baseline"]["source"].startswith(f"baseline smoke--collect--hw-{here} revision 1")
    assert "HARDWARE MISMATCH" not in stdout


def test_scenarios_assert_on_what_the_measured_code_records(tmp_path: Path, root: Path) -> None:
    (tmp_path / "child.py").write_text(
        "from otel_tracker import track_run\n"
        "with track_run('child') as run:\n"
        "    run.log({'val_loss': 0.8})\n"
    )
    path = scenario_file(
        tmp_path,
        """
[[scenarios]]
name = "steady"
entry = "bench_mod:recording"
repetitions = 3
warmup = 1
counters = { deadline_exceeded_total = { max = 0 }, frames_total = { min = 9, max = 9 } }
gauges = { fps = { min = 30, max = 60 } }
series = { loss = { max = 0.5 } }

[[scenarios]]
name = "late"
entry = "bench_mod:recording"
args = { late = 1, fps = 12.5 }
repetitions = 3
warmup = 1
counters = { deadline_exceeded_total = { max = 0 }, retries_total = { min = 1 } }
gauges = { fps = { min = 30 }, temperature = { max = 90 } }

[[scenarios]]
name = "child-series"
command = ["{python}", "child.py"]
repetitions = 1
warmup = 0
series = { val_loss = { max = 0.5 } }
""",
    )
    out = tmp_path / "out"
    proc = otel_cli(root, "perf-test", "--scenario", str(path), "--output", str(out))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    steady, late, child = results(out)["scenarios"]
    assert steady["level"] == "ok" and steady["status"] == "ok"
    # the measured calls' share: the warm-up call's 3 frames are not counted
    assert steady["checks"]["counters"]["frames_total"]["value"] == 9
    assert steady["checks"]["counters"]["deadline_exceeded_total"] == {
        "value": 0.0,
        "min": None,
        "max": 0.0,
        "level": "ok",
    }  # add_count(name, 0): recorded, no "never recorded" note
    assert steady["checks"]["series"]["loss"] == {
        "value": 0.25,
        "min": None,
        "max": 0.5,
        "level": "ok",
    }
    levels = {(k, n): e["level"] for k, es in late["checks"].items() for n, e in es.items()}
    assert levels == {
        ("counters", "deadline_exceeded_total"): "above-band",
        ("counters", "retries_total"): "not-recorded",
        ("gauges", "fps"): "below-band",
        ("gauges", "temperature"): "not-recorded",
    }
    assert late["checks"]["counters"]["deadline_exceeded_total"]["value"] == 3
    assert late["level"] == "not-recorded"
    for line in (
        "  counter deadline_exceeded_total 3 above the band <= 0",
        "  counter retries_total: never recorded: counted as 0 (band >= 1)",
        "  gauge fps 12.5 below the band >= 30",
        "  gauge temperature: never recorded (band <= 90)",
        "  series val_loss 0.8 above the band <= 0.5",
    ):
        assert line in proc.stdout.splitlines(), proc.stdout
    # a command's own track_run joins the run: its series are judged too
    assert child["checks"]["series"]["val_loss"]["level"] == "above-band"
    report = (out / "report.md").read_text()
    assert "| late | counter deadline_exceeded_total | 3 | <= 0 | above-band |" in report
    # what the worker recorded is the scenario run's, as any joined process's counters
    # and gauges are (the run's own total includes the warm-up call)
    doc = validate_manifest(load_manifest(root / late["run_id"] / "manifest.json"))
    assert doc["user_metrics"]["counters"]["deadline_exceeded_total"] == 4
    assert doc["user_metrics"]["gauges"]["fps"] == 12.5
    assert doc["metrics"]["keys"]["loss"]["last"] == 0.25


def test_a_failing_or_overlong_scenario_fails_fast_and_its_run_says_why(
    tmp_path: Path, root: Path
) -> None:
    path = scenario_file(
        tmp_path,
        """
[[scenarios]]
name = "broken"
entry = "bench_mod:boom"

[[scenarios]]
name = "stuck"
entry = "bench_mod:forever"
warmup = 0
time_budget = 2
""",
    )
    out = tmp_path / "out"
    # a 600 s call stopped at its 2 s budget: the status says so, and otel_cli's own
    # timeout fails the test if it ran on (no wall-clock assertion here)
    proc = otel_cli(root, "perf-test", "--scenario", str(path), "--output", str(out))
    assert proc.returncode == 1
    broken, stuck = results(out)["scenarios"]
    assert broken["status"] == "failed" and "ValueError: the benchmark broke" in broken["error"]
    assert stuck["status"] == "timeout" and "time budget of 2 s" in stuck["error"]
    for entry in (broken, stuck):
        doc = validate_manifest(load_manifest(root / entry["run_id"] / "manifest.json"))
        assert doc["status"] == "failed"
        assert doc["error"]["type"].endswith("ScenarioFailed")
    # the call that never returned was measured: its step says so
    stuck_doc = load_manifest(root / stuck["run_id"] / "manifest.json")
    assert [(st["name"], st["status"]) for st in stuck_doc["steps"]] == [
        ("Warm-up", "skipped"),
        ("Measure", "failed"),
    ]


def test_command_scenarios_and_critical_thresholds(tmp_path: Path, root: Path) -> None:
    path = scenario_file(
        tmp_path,
        """
[[scenarios]]
name = "sleepy-command"
command = ["{python}", "-c", "import time; time.sleep(0.05)"]
items = 10
metric = "latency"
percentile = 95
repetitions = 3
warmup = 0
thresholds = { latency_p95_ms = { warn = 1, critical = 2 }, throughput_p50 = { warn = 1 } }
""",
    )
    out = tmp_path / "out"
    proc = otel_cli(root, "perf-test", "--scenario", str(path), "--output", str(out))
    assert proc.returncode == 1, proc.stdout + proc.stderr  # the p95 is far over 2 ms
    (entry,) = results(out)["scenarios"]
    assert entry["status"] == "ok" and entry["metric"] == "latency_p95_ms"
    assert entry["value"] >= 50
    assert entry["thresholds"]["latency_p95_ms"]["level"] == "critical"
    assert entry["thresholds"]["throughput_p50"]["level"] == "ok"  # ~10 items / 0.05 s
    assert entry["level"] == "critical" and entry["verdict"] == "no-baseline"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('[[scenarios]]\nname = "x"\n', "give exactly one of 'entry'"),
        (
            '[[scenarios]]\nname = "x"\nentry = "not an entry"\n',
            "must look like 'package.module:function'",
        ),
        ('[[scenarios]]\nname = "x"\nentry = "m:f"\nrepetition = 3\n', "unknown key 'repetition'"),
        (
            '[[scenarios]]\nname = "x"\nentry = "m:f"\nrepetitions = 0\n',
            "repetitions must be a whole number >= 1",
        ),
        (
            '[[scenarios]]\nname = "x"\nentry = "m:f"\nmetric = "speed"\n',
            "metric must be 'throughput' or 'latency'",
        ),
        (
            '[[scenarios]]\nname = "x"\nentry = "m:f"\nthresholds = { latency_p97_ms = { warn = 1 } }\n',
            "unknown metric 'latency_p97_ms'",
        ),
        (
            '[[scenarios]]\nname = "x"\nentry = "m:f"\n[[scenarios]]\nname = "x"\nentry = "m:g"\n',
            "scenario name 'x' appears twice",
        ),
        (
            'tolerance = 2\n[[scenarios]]\nname = "x"\nentry = "m:f"\n',
            "'tolerance' must be a number between 0 and 1",
        ),
        ("[[scenarios]\n", "invalid TOML"),
        (
            '[[scenarios]]\nname = "x"\nentry = "m:f"\n'
            "thresholds = { latency_p95_ms = { min = 60, max = 35 } }\n",
            "min (60) is above max (35)",
        ),
    ],
)
def test_bad_scenario_files_are_one_clear_error_and_run_nothing(
    tmp_path: Path, root: Path, body: str, message: str
) -> None:
    path = scenario_file(tmp_path, body)
    proc = otel_cli(root, "perf-test", "--scenario", str(path))
    assert proc.returncode == 2
    assert message in proc.stderr and str(path) in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not root.exists() or not any(root.iterdir())


def test_unknown_only_and_bad_baseline_file_fail_before_running(tmp_path: Path, root: Path) -> None:
    path = scenario_file(tmp_path, FAST % "0.01")
    proc = otel_cli(root, "perf-test", "--scenario", str(path), "--only", "nope")
    assert proc.returncode == 2 and "no scenario 'nope'" in proc.stderr
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    proc = otel_cli(root, "perf-test", "--scenario", str(path), "--baseline", str(bad))
    assert proc.returncode == 2 and "not an otel-tracker baseline" in proc.stderr
    assert not root.exists() or not any(root.iterdir())


def test_the_shipped_default_suite_runs_and_passes_against_its_own_baseline(
    tmp_path: Path, root: Path
) -> None:
    first = otel_cli(
        root,
        "perf-test",
        "--default",
        "--save-baseline",
        "--output",
        str(tmp_path / "a"),
        timeout=120,
    )
    assert first.returncode == 0, first.stdout + first.stderr
    names = [r["name"] for r in results(tmp_path / "a")["scenarios"]]
    assert names == ["rollouts", "bc-epoch", "policy-step"]
    assert sorted(p.name for p in (root / "baselines").iterdir()) == [
        "imitation-smoke--bc-epoch.json",
        "imitation-smoke--policy-step.json",
        "imitation-smoke--rollouts.json",
    ]
    # judged against the baseline just saved: verdicts, not "no-baseline" (a shared CI
    # machine may be noisy, so the verdict itself is not asserted)
    second = otel_cli(
        root,
        "perf-test",
        "--default",
        "--only",
        "rollouts",
        "--output",
        str(tmp_path / "b"),
        timeout=120,
    )
    (entry,) = results(tmp_path / "b")["scenarios"]
    assert entry["verdict"] in ("pass", "regression", "improvement")
    assert second.returncode == (1 if entry["verdict"] == "regression" else 0)


def test_a_killed_perf_test_takes_its_worker_with_it(tmp_path: Path, root: Path) -> None:
    import os
    import signal
    import subprocess
    import sys

    from tests.helpers import child_env, read_when, wait_for

    path = scenario_file(
        tmp_path, '[[scenarios]]\nname = "stuck"\nentry = "bench_mod:forever"\nwarmup = 0\n'
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "otel_tracker.cli",
            "--root",
            str(root),
            "perf-test",
            "--scenario",
            str(path),
        ],
        env=child_env(root, OTEL_TRACKER_PROGRESS="off"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for(read_when(root, lambda d: d["current_step"] == "Measure"), what="the Measure step")
    worker = wait_for(lambda: _worker_pid(proc.pid), what="the worker process")
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)

    def gone() -> bool:
        try:
            os.kill(worker, 0)
        except ProcessLookupError:
            return True
        return False

    wait_for(gone, timeout=10, what="the orphaned worker to exit")


def _bars(svg: Path) -> list[int]:
    tree = ET.parse(svg).getroot()
    rects = tree.iter("{http://www.w3.org/2000/svg}rect")
    return [int(r.get("data-count") or 0) for r in rects if r.get("class") == "bar"]


def _worker_pid(parent: int) -> int | None:
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == parent and b"otel_tracker.perftest.worker" in cmdline:
            return int(entry.name)
    return None
