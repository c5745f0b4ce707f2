"""``otel-tracker prune --artifacts``: the selected runs lose their artifacts (by kind,
by size, sparing the best or last checkpoint), keep the record of them (marked
``pruned_at``), and nothing that is not theirs alone is ever removed; killed at any
moment, no artifact is gone without its mark."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from otel_tracker import track_run
from otel_tracker.analysis.artifact_prune import locate, run_artifacts
from otel_tracker.contract.removal import PRUNING_MARK
from tests.helpers import child_env, otel_cli, wait_for

QUIET: dict[str, Any] = {"progress": "off", "resources": False, "summary_files": False}


def _train(root: Path, work: Path, runs: int, *, files: int = 1) -> list[str]:
    """Runs of ``train``, each with three checkpoints (the middle one best) and a
    TensorBoard directory of ``files`` event files, under ``work/<i>``."""
    ids = []
    for i in range(runs):
        out = work / str(i)
        (out / "tb").mkdir(parents=True)
        with track_run("train", root=root, **QUIET) as run:
            for epoch in range(3):
                checkpoint = out / f"epoch{epoch}.ckpt"
                checkpoint.write_bytes(b"w" * 1000 * (epoch + 1))
                run.add_artifact(checkpoint, "checkpoint", best=epoch == 1)
            for n in range(files):
                (out / "tb" / f"events.{n}").write_bytes(b"e" * 500)
            run.add_artifact(out / "tb", "tensorboard")
        ids.append(run.run_id)
    return ids


def _manifest(root: Path, run_id: str) -> dict[str, Any]:
    return json.loads((root / run_id / "manifest.json").read_text())


def test_dry_run_then_yes_by_kind_sparing_the_best(root: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    ids = _train(root, work, 3)
    listed = otel_cli(root, "prune", "--artifacts", "--keep-last", "1", "--kind", "checkpoint")
    assert listed.returncode == 0, listed.stderr
    assert "would remove 6 artifacts (12.0 kB)" in listed.stdout  # 2 old runs x 3 epochs
    assert all((work / str(i) / "epoch0.ckpt").exists() for i in range(3))
    done = otel_cli(
        root, "prune", "--artifacts", "--keep-last", "1", "--kind", "checkpoint", "--keep", "best"
    )
    assert "would remove 4 artifacts" in done.stdout
    done = otel_cli(
        root, "prune", "--artifacts", "--keep-last", "1", "--kind", "checkpoint", "--keep", "best",
        "--yes",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "removed 4 artifacts (8.0 kB) of 2 runs" in done.stdout
    for i, run_id in enumerate(ids):
        kept = i == 2  # the newest run keeps everything
        assert (work / str(i) / "epoch0.ckpt").exists() is kept
        assert (work / str(i) / "epoch1.ckpt").exists()  # the best
        assert (work / str(i) / "tb" / "events.0").exists()  # another kind
        entries = {Path(a["path"]).name: a for a in _manifest(root, run_id)["artifacts"]}
        assert len(entries) == 4  # the record of what was there stays
        if not kept:
            assert entries["epoch0.ckpt"]["pruned_at"].endswith("Z")
            assert entries["epoch2.ckpt"]["size_bytes"] == 3000
            assert "pruned_at" not in entries["epoch1.ckpt"]
    shown = otel_cli(root, "show", ids[0])
    assert "checkpoint (pruned " in shown.stdout and "checkpoint (best)" in shown.stdout
    again = otel_cli(
        root, "prune", "--artifacts", "--keep-last", "1", "--kind", "checkpoint", "--keep", "best"
    )
    assert "would remove 0 artifacts" in again.stdout and "pruned already" in again.stdout


def test_by_size_and_keeping_the_last_checkpoint(root: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    ids = _train(root, work, 2, files=10)  # tensorboard: 5,000 B
    done = otel_cli(
        root, "prune", "--artifacts", "--keep-last", "0", "--larger-than", "2.5kB",
        "--keep", "last", "--yes",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    old = work / "0"  # the newest completed run (work/1) is protected
    assert not (old / "tb").exists()
    assert (old / "epoch2.ckpt").exists()  # 3,000 B but the last checkpoint
    assert (old / "epoch0.ckpt").exists() and (old / "epoch1.ckpt").exists()  # small
    assert (work / "1" / "tb").exists()
    assert "removed 1 artifacts (5.0 kB) of 1 runs" in done.stdout
    assert ids


def test_nothing_but_the_runs_own_artifacts_is_ever_removed(root: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    outside = tmp_path / "precious"
    outside.mkdir()
    (outside / "data.bin").write_bytes(b"keep me")
    work.mkdir()
    (work / "link.ckpt").symlink_to(outside / "data.bin")
    (work / "linkdir").symlink_to(outside)
    shared = work / "shared.ckpt"
    shared.write_bytes(b"s")
    home = Path.home()
    cwd = os.getcwd()
    with track_run("train", root=root, **QUIET) as old:
        for path in (work / "link.ckpt", work / "linkdir", shared, root, root.parent, home, cwd):
            old.add_artifact(path, "checkpoint")
        old.add_artifact("relative.ckpt", "checkpoint")  # under the run's working directory
    other_dir = root / old.run_id
    with track_run("train", root=root, **QUIET) as middle:
        middle.add_artifact(other_dir / "manifest.json", "checkpoint")  # another run's file
        middle.add_artifact(shared, "checkpoint")  # shared with a run that stays
    with track_run("train", root=root, **QUIET) as newest:
        newest.add_artifact(shared, "checkpoint")
    relative = Path(cwd) / "relative.ckpt"
    relative.write_bytes(b"r")
    try:
        done = otel_cli(root, "prune", "--artifacts", "--keep-last", "1", "--yes", "--json")
        assert done.returncode == 0, done.stderr
        removed = {Path(i["location"]).name for i in json.loads(done.stdout)["removed"]}
        assert removed == {"link.ckpt", "linkdir", "relative.ckpt"}
    finally:
        relative.unlink(missing_ok=True)
    assert (outside / "data.bin").read_bytes() == b"keep me"  # links removed, not followed
    assert not os.path.lexists(work / "link.ckpt") and not os.path.lexists(work / "linkdir")
    assert shared.exists() and home.exists() and root.exists() and Path(cwd).exists()
    assert (other_dir / "manifest.json").exists()
    listed = otel_cli(root, "list")
    assert listed.returncode == 0 and old.run_id in listed.stdout


def test_killed_at_random_moments_no_artifact_is_gone_unmarked(root: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    ids = _train(root, work, 40, files=300)  # removal takes long enough to be hit
    rng = random.Random(11)
    command = [sys.executable, "-m", "otel_tracker.cli", "--root", str(root), "prune"]
    command += ["--artifacts", "--keep-last", "1", "--yes"]
    kills = halfway = 0
    for _ in range(25):
        child = subprocess.Popen(
            command, env=child_env(root), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        # once it marks another run's manifest it is removing: kill it within 15 ms
        before = _marked(root, ids)
        wait_for(lambda c=child, n=before: c.poll() is not None or _marked(root, ids) > n)
        time.sleep(rng.uniform(0, 0.015))
        if child.poll() is not None:
            break
        child.send_signal(signal.SIGKILL)
        child.wait()
        kills += 1
        halfway += _assert_truthful(root, ids)
    assert kills >= 5 and halfway >= 1  # some kills landed inside a removal
    finished = subprocess.run(command, env=child_env(root), capture_output=True, text=True)
    assert finished.returncode == 0, finished.stderr
    _assert_truthful(root, ids)
    for i in range(39):  # every artifact of the old runs gone, and what kills left too
        assert sorted(os.listdir(work / str(i))) == [], os.listdir(work / str(i))
    assert len(os.listdir(work / "39")) == 4


def _marked(root: Path, ids: list[str]) -> int:
    return sum(b"pruned_at" in (root / i / "manifest.json").read_bytes() for i in ids)


def _assert_truthful(root: Path, ids: list[str]) -> int:
    """Every artifact that is gone is marked pruned; nothing half-hidden is unmarked.
    How many were left half-removed (renamed aside, not yet deleted)."""
    halfway = 0
    for run_id in ids:
        doc = _manifest(root, run_id)  # always whole: written atomically
        for artifact in run_artifacts(doc):
            location = locate(artifact, doc)
            assert location is not None
            hidden = [p for p in location.parent.iterdir() if PRUNING_MARK in p.name]
            gone = not os.path.lexists(location)
            aside = any(p.name.startswith(f".{location.name}.") for p in hidden)
            halfway += aside
            if gone or aside:
                assert isinstance(artifact.get("pruned_at"), str), (run_id, artifact)
    return halfway


def test_bad_options_are_one_line_errors(root: Path, tmp_path: Path) -> None:
    _train(root, tmp_path / "work", 1)
    for args, message in (
        (("--artifacts", "--larger-than", "5XB"), "bad size '5XB'"),
        (("--kind", "checkpoint"), "add --artifacts"),
        (("--artifacts", "--keep", "worst"), "invalid choice"),
    ):
        done = otel_cli(root, "prune", *args)
        assert done.returncode == 2, (args, done.stdout)
        assert message in done.stderr and "Traceback" not in done.stderr


def test_parse_bytes() -> None:
    from otel_tracker.values import parse_bytes

    assert parse_bytes("500") == 500
    assert parse_bytes("2.5kB") == 2500
    assert parse_bytes("1GiB") == 2**30
    assert parse_bytes(" 3 mb ") == 3_000_000
    for bad in ("", "MB", "-1MB", "1 parsec", "1e3"):
        try:
            parse_bytes(bad)
        except ValueError as exc:
            assert "bad size" in str(exc)
        else:
            raise AssertionError(bad)


def test_links_in_the_folders_above_an_artifact_are_resolved(root: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    (work / "real").mkdir(parents=True)
    shared = work / "real" / "shared.ckpt"
    shared.write_bytes(b"s")
    (work / "alias").symlink_to(work / "real")
    root.mkdir(parents=True)
    (work / "rootlink").symlink_to(root)
    with track_run("train", root=root, **QUIET) as old:
        pass
    with track_run("train", root=root, **QUIET) as kept:
        kept.add_artifact(shared, "checkpoint")
    # the old run claims the kept run's directory and its checkpoint, through links
    doc = _manifest(root, old.run_id)
    doc["artifacts"] = [
        {"path": str(work / "rootlink" / kept.run_id), "kind": "checkpoint"},
        {"path": str(work / "alias" / "shared.ckpt"), "kind": "checkpoint"},
    ]
    (root / old.run_id / "manifest.json").write_text(json.dumps(doc))
    done = otel_cli(root, "prune", "--artifacts", "--keep-last", "1", "--yes")
    assert done.returncode == 0, done.stderr
    assert "removed 0 artifacts" in done.stdout
    assert (root / kept.run_id / "manifest.json").exists() and shared.exists()
    listed = otel_cli(root, "prune", "--artifacts", "--keep-last", "1")
    assert "inside the root but not inside its own run" in listed.stdout
    assert "another run registered it too" in listed.stdout


def test_an_unreadable_manifest_stops_an_artifact_prune(root: Path, tmp_path: Path) -> None:
    ids = _train(root, tmp_path / "work", 3)
    (root / ids[1] / "manifest.json").write_text("{not json")
    done = otel_cli(root, "prune", "--artifacts", "--keep-last", "0", "--yes")
    assert done.returncode != 0 and "none are removed" in done.stderr, done.stderr
    assert (tmp_path / "work" / "0" / "epoch0.ckpt").exists()


def test_keep_last_spares_the_newest_checkpoint_on_disk(root: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    with track_run("train", root=root, steps=["fit"], **QUIET) as run:
        with run.step("fit") as step:
            for epoch in range(2):
                (work / f"e{epoch}.ckpt").write_bytes(b"e")
                os.utime(work / f"e{epoch}.ckpt", (1_000 + epoch, 1_000 + epoch))
                step.add_artifact(work / f"e{epoch}.ckpt", "checkpoint")
        (work / "final.ckpt").write_bytes(b"f")  # registered last, at run level, newest
        run.add_artifact(work / "final.ckpt", "checkpoint")
    with track_run("train", root=root, **QUIET):
        pass
    done = otel_cli(root, "prune", "--artifacts", "--keep-last", "1", "--keep", "last", "--yes")
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in work.iterdir()) == ["final.ckpt"]
