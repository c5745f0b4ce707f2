"""``otel-tracker prune``: a dry run unless --yes, and never what must stay: a running
run, a baseline's source runs, the newest completed run of a pipeline, anything
outside the root; killed at any moment, it leaves no half-listed run."""

from __future__ import annotations

import itertools
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from otel_tracker import track_run
from otel_tracker.contract.paths import RUN_ID_PATTERN
from otel_tracker.history.store import RunStore
from tests.helpers import REPO, child_env, otel_cli, start_script, wait_for

QUIET: dict[str, Any] = {"progress": "off", "resources": False, "summary_files": False}


def _runs(
    root: Path, name: str, n: int, *, fail: bool = False, scenario: str | None = None
) -> list[str]:
    ids = []
    for _ in range(n):
        try:
            with track_run(name, root=root, scenario=scenario, **QUIET) as run, run.step("work"):
                if fail:
                    raise ValueError("boom")
        except ValueError:
            pass
        ids.append(run.run_id)
    return ids


def _listed(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if RUN_ID_PATTERN.match(p.name))


def _prune(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return otel_cli(root, "prune", *args)


def test_a_dry_run_lists_what_yes_removes(root: Path) -> None:
    train = _runs(root, "train", 6)
    failed = _runs(root, "etl", 3, fail=True)
    done = _prune(root, "--keep-last", "2")
    assert done.returncode == 0, done.stderr
    assert "would remove 5 runs" in done.stdout  # 4 of train, 1 of etl
    assert "pass --yes to remove them" in done.stdout
    assert _listed(root) == sorted(train + failed)  # nothing removed
    plan = json.loads(_prune(root, "--keep-last", "2", "--json").stdout)
    assert sorted(i["run_id"] for i in plan["remove"]) == sorted(train[:4] + failed[:1])
    assert plan["bytes"] > 0
    done = _prune(root, "--keep-last", "2", "--yes")
    assert done.returncode == 0, done.stderr
    assert "removed 5 runs" in done.stdout
    assert _listed(root) == sorted(train[4:] + failed[1:])
    assert not any((root / ".trash").iterdir())
    store = RunStore.open(root)
    assert len(store.list(limit=None)) == 4 and store.problems == []


def test_status_and_age_narrow_the_selection(root: Path) -> None:
    ok = _runs(root, "etl", 2)
    failed = _runs(root, "etl", 3, fail=True)
    done = _prune(root, "--keep-last", "0", "--status", "failed", "--yes")
    assert done.returncode == 0, done.stderr
    assert _listed(root) == sorted(ok)
    assert set(failed).isdisjoint(_listed(root))
    # nothing here is a day old
    assert "would remove 0 runs" in _prune(root, "--keep-last", "0", "--older-than", "1d").stdout


def test_the_newest_completed_run_of_a_pipeline_always_stays(root: Path) -> None:
    (good,) = _runs(root, "train", 1)
    failed = _runs(root, "train", 2, fail=True)
    done = _prune(root, "--keep-last", "0", "--yes")
    assert done.returncode == 0, done.stderr
    assert _listed(root) == [good]
    assert set(failed).isdisjoint(_listed(root))


def test_a_baselines_source_runs_stay_unless_included(root: Path) -> None:
    runs = _runs(root, "train", 5)
    done = otel_cli(root, "baseline", "create", "--from", runs[0], "--from", runs[1])
    assert done.returncode == 0, done.stderr
    done = _prune(root, "--keep-last", "0", "--yes")
    assert done.returncode == 0, done.stderr
    assert _listed(root) == sorted([runs[0], runs[1], runs[4]])
    done = _prune(root, "--keep-last", "0", "--include-baselines", "--yes")
    assert _listed(root) == [runs[4]]
    # the baseline keeps its figures without its runs
    assert otel_cli(root, "baseline", "show", "train").returncode == 0


def test_an_unreadable_baseline_stops_the_prune(root: Path) -> None:
    _runs(root, "train", 3)
    (root / "baselines").mkdir()
    (root / "baselines" / "train.json").write_text("{not json")
    done = _prune(root, "--keep-last", "0", "--yes")
    assert done.returncode != 0
    assert "its source runs are unknown" in done.stderr and "Traceback" not in done.stderr
    assert len(_listed(root)) == 3


def test_a_running_run_is_never_removed(root: Path, tmp_path: Path) -> None:
    old = _runs(root, "train", 3)
    gate = tmp_path / "gate"
    child = start_script(
        f"""
        import time
        from pathlib import Path
        from otel_tracker import track_run
        with track_run("train", progress="off", resources=False) as run:
            Path({str(gate)!r}).write_text(run.run_id)
            while not Path({str(gate)!r} + ".go").exists():
                time.sleep(0.02)
        """,
        root,
    )
    try:
        live = wait_for(lambda: gate.exists() and gate.read_text(), what="the live run")
        done = _prune(root, "--keep-last", "0", "--yes")
        assert done.returncode == 0, done.stderr
        assert live in _listed(root)
        assert _listed(root) == sorted([live, old[-1]])  # and the newest completed one
    finally:
        Path(str(gate) + ".go").touch()
        child.wait(30)
    assert child.returncode == 0, child.stderr.read() if child.stderr else ""


def test_links_are_never_followed_out_of_the_root(root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    precious = outside / "precious.txt"
    precious.write_text("keep me")
    runs = _runs(root, "train", 3)
    (root / runs[0] / "escape").symlink_to(outside, target_is_directory=True)
    (root / runs[0] / "file-link").symlink_to(precious)
    # a link at the root named like a run, pointing outside: not a run, not followed
    fake = "20200101T000000.000Z-train-abcdef"
    (root / fake).symlink_to(outside, target_is_directory=True)
    done = _prune(root, "--keep-last", "0", "--yes")
    assert done.returncode == 0, done.stderr
    assert precious.read_text() == "keep me" and outside.is_dir()
    assert runs[0] not in _listed(root) and (root / fake).is_symlink()


_SERIAL = itertools.count(1)


def _populate(root: Path, template: Path, n: int) -> None:
    """``n`` copies of the template run (files hard-linked: quick to make, and each
    still one unlink to remove)."""
    base = int(time.time())
    for i in range(n):
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(base - 86400 - i))
        run_id = f"{stamp}.000Z-bulk-{next(_SERIAL):06x}"
        shutil.copytree(template, root / run_id, copy_function=os.link)
        manifest = root / run_id / "manifest.json"
        doc = json.loads(manifest.read_text())
        doc["run_id"] = run_id
        manifest.unlink()  # a file of its own, not the template's
        manifest.write_text(json.dumps(doc))


def _complete(root: Path, files: set[str]) -> None:
    """Every run the root lists is whole: each file the template had is there."""
    for name in _listed(root):
        present = {str(p.relative_to(root / name)) for p in (root / name).rglob("*")}
        assert files <= present, f"{name} is listed but missing {sorted(files - present)[:3]}"
        json.loads((root / name / "manifest.json").read_text())


def _removing(root: Path) -> bool:
    trash = root / ".trash"
    try:
        return any(trash.iterdir())
    except FileNotFoundError:
        return False


@pytest.mark.slow
def test_a_prune_killed_at_random_moments_never_leaves_a_half_listed_run(
    root: Path, tmp_path: Path
) -> None:
    (template_id,) = _runs(root, "bulk", 1)
    template = tmp_path / "template"
    shutil.copytree(root / template_id, template)
    shutil.rmtree(root / template_id)
    (template / "logs").mkdir()
    for i in range(24):  # files to delete one by one: a run takes a while to remove
        (template / "logs" / f"part-{i}.log").write_text("x" * 512)
    files = {str(p.relative_to(template)) for p in template.rglob("*")}
    rng = random.Random(27)
    kills = mid_removal = 0
    while kills < 50:
        if len(_listed(root)) < 40:
            _populate(root, template, 150)
        child = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "otel_tracker.cli",
                "--root",
                str(root),
                "prune",
                "--keep-last",
                "1",
                "--yes",
            ],
            env=child_env(root),
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if kills % 2:  # any moment: start-up, planning, removing, or already done
            time.sleep(rng.uniform(0.0, 0.4))
        else:  # once a run has left the listing: mid-removal
            deadline = time.monotonic() + 20
            while not _removing(root) and child.poll() is None and time.monotonic() < deadline:
                time.sleep(0.002)
            time.sleep(rng.uniform(0.0, 0.03))
        if child.poll() is None:
            child.send_signal(signal.SIGKILL)
            kills += 1
            mid_removal += _removing(root)
        child.wait(30)
        _complete(root, files)
        assert RunStore.open(root).list(limit=5) is not None
    assert mid_removal >= 20, f"only {mid_removal} of {kills} kills landed mid-removal"
    # a rerun finishes the job, the partial trees left in .trash included
    done = _prune(root, "--keep-last", "1", "--yes")
    assert done.returncode == 0, done.stderr
    assert len(_listed(root)) == 1 and os.listdir(root / ".trash") == []


def test_list_size_shows_each_runs_bytes_the_total_and_the_largest(
    root: Path, tmp_path: Path
) -> None:
    small, large = _runs(root, "train", 2)
    (root / large / "logs").mkdir(exist_ok=True)
    (root / large / "logs" / "big.log").write_bytes(b"x" * 200_000)
    checkpoint = tmp_path / "model.ckpt"
    checkpoint.write_bytes(b"w" * 50_000)
    with track_run("train", root=root, **QUIET) as run:
        run.add_artifact(checkpoint, kind="checkpoint")
    rows = {r["run_id"]: r for r in json.loads(otel_cli(root, "list", "--size", "--json").stdout)}
    assert rows[large]["size_bytes"] >= 200_000 > rows[small]["size_bytes"] > 0
    assert rows[run.run_id]["artifacts_outside_bytes"] == 50_000
    assert rows[small]["artifacts_outside_bytes"] == 0
    done = otel_cli(root, "list", "--size")
    assert done.returncode == 0, done.stderr
    assert (
        "total " in done.stdout
        and "in 3 runs (and 50.0 kB of artifacts outside the root)" in done.stdout
    )
    assert f"largest: {large}" in done.stdout
    # without --size, list does not walk the directories
    assert "size" not in otel_cli(root, "list").stdout.splitlines()[0]


def test_a_runs_retention_prunes_the_root_after_it_ends_and_logs_it(root: Path) -> None:
    for _ in range(5):
        with track_run("nightly", root=root, retention="keep-last=2", **QUIET):
            pass

    # detached prunes, one per run, none of them our child (a shell started each and
    # exited): wait for the outcome, not for a time
    def ours() -> list[str]:
        found = []
        for child in psutil.Process().children(recursive=True):
            try:
                found.append(" ".join(child.cmdline()))
            except psutil.Error:  # gone meanwhile
                continue
        return [c for c in found if "otel-tracker-retention" in c or "prune" in c]

    wait_for(lambda: not ours(), what="the shells that started the prunes reaped")
    wait_for(lambda: len(_listed(root)) == 2, what="the root pruned to the last 2")
    log = root / "retention.log"

    def removed() -> int:  # each removed run is counted by the prune that removed it
        lines = log.read_text().splitlines() if log.exists() else []
        return sum(int(line.split("removed ")[1].split()[0]) for line in lines)

    try:
        wait_for(lambda: removed() == 3, what="three removals in the retention log")
    except BaseException:
        print("retention.log:", log.read_text() if log.exists() else "(none)")
        print("runs:", _listed(root), "trash:", list((root / ".trash").iterdir()))
        raise
    assert all(
        "keep the last 2 per pipeline and scenario: removed" in line
        for line in log.read_text().splitlines()
    )


def test_a_bad_retention_setting(root: Path, caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(ValueError, match="keep-last='lots'"):
        track_run("nightly", root=root, retention="keep-last=lots", **QUIET)
    with (
        caplog.at_level("WARNING", logger="otel_tracker"),
        track_run(
            "nightly", root=root, environ={"OTEL_TRACKER_RETENTION": "keep-last=lots"}, **QUIET
        ) as run,
    ):
        pass
    assert "ignoring OTEL_TRACKER_RETENTION" in caplog.text
    assert run.run_id in _listed(root)
    done = _prune(root, "--policy", "keep-last=1", "--keep-last", "3")
    assert done.returncode != 0 and "give it alone" in done.stderr
