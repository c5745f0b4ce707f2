"""The writer never writes through a symlink or into a FIFO planted in a run directory.

Whoever can write into the runs root (a shared /tmp, a mounted volume) could plant
``telemetry.jsonl`` or a predictable temp file name as a link to a file elsewhere:
the tracker would truncate and rewrite its target. Every file the writer creates is
opened with ``O_NOFOLLOW``, temp files also with ``O_EXCL``, and only regular files
are written.
"""

from __future__ import annotations

import os
from pathlib import Path

from tests.helpers import only_manifest, run_script

# Plants links to files outside the root as the tracker creates the run directory
# (like tests/helpers.OBSTRUCT_TENSORBOARD): names it is about to create.
PLANT = """
import os, sys
import otel_tracker.record.run_opening as run_module
from otel_tracker.contract.paths import create_run_dir

OUTSIDE = sys.argv[1]

def planted(root, name, attempts=20):
    run_id, run_dir = create_run_dir(root, name, attempts)
    os.symlink(os.path.join(OUTSIDE, "victim-telemetry"), run_dir / "telemetry.jsonl")
    os.symlink(os.path.join(OUTSIDE, "victim-gen"), run_dir / ".manifest.json.gen")
    os.symlink(OUTSIDE, run_dir / "logs")
    for n in range(400):  # the temp names a writer of this pid would use
        os.symlink(os.path.join(OUTSIDE, "victim-tmp"),
                   run_dir / f".manifest.json.{os.getpid()}.{n}.tmp")
    return run_id, run_dir

run_module.create_run_dir = planted
"""

TRACKED = """
from otel_tracker import track_run
with track_run("planted", steps=["a", "b"], heartbeat_interval=0.05,
               sample_interval=0.05, progress="off") as run:
    for name in ("a", "b"):
        with run.step(name) as step:
            step.advance(3)
"""

WRAPPED = """
from otel_tracker.cli.main import main
raise SystemExit(main(["run", "--name", "wrapped", "--", sys.executable, "-c", "print('out')"]))
"""


def _outside(tmp_path: Path) -> Path:
    outside = tmp_path / "outside"
    outside.mkdir()
    for name in ("victim-telemetry", "victim-gen", "victim-tmp"):
        (outside / name).write_text("precious\n")
    return outside


def _untouched(outside: Path) -> None:
    assert sorted(p.name for p in outside.iterdir()) == [
        "victim-gen",
        "victim-telemetry",
        "victim-tmp",
    ]
    for victim in outside.iterdir():
        assert victim.read_text() == "precious\n", victim


def test_links_planted_in_a_run_directory_are_never_written_through(
    tmp_path: Path, root: Path
) -> None:
    outside = _outside(tmp_path)
    code = f"import sys; sys.argv[1:] = [{str(outside)!r}]\n" + PLANT + TRACKED
    proc = run_script(code, root, 60)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    _untouched(outside)
    doc = only_manifest(root)
    assert doc["status"] == "completed" and doc["steps_completed"] == 2


def test_a_wrapped_commands_logs_never_go_through_a_planted_link(
    tmp_path: Path, root: Path
) -> None:
    outside = _outside(tmp_path)
    code = f"import sys; sys.argv[1:] = [{str(outside)!r}]\n" + PLANT + WRAPPED
    proc = run_script(code, root, 60, OTEL_TRACKER_PROGRESS="off")
    assert proc.returncode == 0, proc.stderr
    assert "out" in proc.stdout
    _untouched(outside)
    doc = only_manifest(root)
    assert doc["status"] == "completed"
    assert any("not logged" in w for w in doc["warnings"]), doc["warnings"]
    assert os.path.islink(Path(doc["run_dir"]) / "logs")
