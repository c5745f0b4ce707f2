"""Files in a run directory are untrusted: a FIFO, a huge number, a lone surrogate,
a 5 MB name or 100,000 steps must never hang, crash or flood a reader.

Each command runs as ``otel-tracker`` would: a real process (FIFOs), or ``main()``
in-process where nothing can block. Every outcome is either the run shown, or one
line that names the file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from otel_tracker.cli.main import main
from tests.helpers import child_env, make_run, otel_cli

READERS = (
    ["list"],
    ["list", "--json"],
    ["show", "RUN"],
    ["show", "RUN", "--json"],
    ["summary", "RUN"],
    ["summary", "RUN", "--format", "json"],
    ["summary", "RUN", "--format", "markdown"],
    ["status", "RUN"],
    ["status", "RUN", "--json"],
    ["export", "RUN", "--output", "OUT"],
)
# a hang shows as this timeout; a working reader takes well under a second
HANG_S = 120


def _args(command: list[str], run_dir: Path, out: Path) -> list[str]:
    return [{"RUN": run_dir.name, "OUT": str(out)}.get(a, a) for a in command]


def _one_line_or_fine(code: int, err: str, where: Any) -> None:
    assert "Traceback" not in err, (where, err)
    assert code in (0, 2), (where, code, err)
    if code == 2:
        assert err.startswith("otel-tracker: error: ") and err.count("\n") == 1, (where, err)


def _aborted_run(root: Path, template: dict[str, Any], name: str = "hostile") -> Path:
    """A run left ``running`` by a dead process: readers infer aborted and read more files."""
    run_dir = make_run(root, template, name=name, status="running")
    doc = json.loads((run_dir / "manifest.json").read_text())
    doc["process"]["pid"] = 2**22 + 7  # no such process
    doc["steps"][1]["status"] = "running"
    doc["steps"][1]["resources"] = None
    doc["tracker"]["lock_file"] = ".lock"
    (run_dir / "manifest.json").write_text(json.dumps(doc))
    (run_dir / ".lock").write_text("")
    (run_dir / "telemetry.jsonl").write_text("")
    return run_dir


@pytest.mark.parametrize(
    "target", ["manifest.json", ".lock", "parts/p.json", "telemetry.jsonl", "baseline"]
)
def test_a_fifo_in_place_of_any_run_file_never_blocks_a_reader(
    root: Path, template_manifest: dict[str, Any], target: str
) -> None:
    """Opening a FIFO for reading blocks until a writer comes: every reader of every
    file a run directory holds (manifest, lock, parts, telemetry, baselines) must
    refuse it instead, and a new run of the pipeline (which reads its history) start."""
    run_dir = _aborted_run(root, template_manifest)
    path = root / "baselines" / "hostile.json" if target == "baseline" else run_dir / target
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    os.mkfifo(path)
    commands = [*READERS, ["baseline", "show", "hostile"], ["baseline", "list"]]
    for command in commands:
        proc = otel_cli(root, *_args(command, run_dir, root / "x.md"), timeout=HANG_S)
        _one_line_or_fine(
            proc.returncode, proc.stderr.replace("otel-tracker: warning:", ""), command
        )
        if target == "manifest.json" and command == ["list"]:
            assert "FIFO" in proc.stderr and str(path) in proc.stderr
    # a new run of the same pipeline reads the earlier runs' manifests for its ETAs
    script = textwrap.dedent(
        """
        from otel_tracker import track_run
        with track_run("hostile", steps=["a"], progress="off", resources=False) as run:
            with run.step("a"):
                pass
        print("done")
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script],
        env=child_env(root),
        capture_output=True,
        text=True,
        timeout=HANG_S,
    )
    assert proc.returncode == 0 and "done" in proc.stdout, proc.stderr


def _with_raw(run_dir: Path, old: str, new: str) -> None:
    path = run_dir / "manifest.json"
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


NUMBERS = ["1" + "0" * 400, "-" + "1" + "0" * 400, "1e400", "-1e999", "NaN", "Infinity", "1e19"]
NUMBER_FIELDS = [
    '"duration_s":90.0',
    '"completed":4',
    '"heartbeat_interval_s":5.0',
    '"start_time":',
]


@pytest.mark.parametrize("number", NUMBERS)
def test_numbers_no_reader_can_format_are_one_line_naming_the_file(
    root: Path,
    template_manifest: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
    number: str,
) -> None:
    """``10**400`` is valid JSON and overflows ``float()``; ``NaN`` and ``Infinity``
    are what Python's json accepts: in any numeric field, ``list`` still lists the
    other runs and names the file once, and the other readers say what is wrong in
    one line instead of a traceback."""
    for field in NUMBER_FIELDS:
        for child in root.glob("*"):
            for f in child.iterdir():
                f.unlink()
            child.rmdir()
        good = make_run(root, template_manifest, name="good", suffix="000001")
        run_dir = make_run(root, template_manifest, name="hostile")
        key = field.split(":")[0]
        text = (run_dir / "manifest.json").read_text()
        start = text.index(key + ":") + len(key) + 1
        end = min(i for i in (text.find(",", start), text.find("}", start)) if i > 0)
        (run_dir / "manifest.json").write_text(text[:start] + number + text[end:])
        for command in READERS:
            code = main(["--root", str(root), *_args(command, run_dir, root / "x.md")])
            out, err = capsys.readouterr()
            where = (field, number, command)
            if command[0] == "list":
                assert code == 0 and good.name in out, where
                assert err.count("\n") == 1 and "manifest.json" in err and "Traceback" not in err
                assert run_dir.name in err, where
            else:
                assert code == 2, (where, out)
                assert err.startswith("otel-tracker: error: ") and err.count("\n") == 1, where
                assert str(run_dir / "manifest.json") in err, where


def test_lone_surrogates_are_shown_escaped_by_every_reader(
    root: Path, template_manifest: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """``"\\ud800"`` is valid JSON for a string no encoder can write: in a run name,
    step name, error or param key it is shown as the text ``\\ud800``."""
    run_dir = make_run(root, template_manifest, name="surrogate", status="failed")
    doc = json.loads((run_dir / "manifest.json").read_text())
    doc["name"] = "n\ud800x"
    doc["steps"][0]["name"] = "s\udfff"
    doc["error"] = {"type": "E\udc80", "message": "m\ud83d", "traceback": "t\ud800"}
    doc["params"] = {"k\ud800": "v\udbff"}
    (run_dir / "manifest.json").write_text(json.dumps(doc))  # ASCII: the escapes as text
    assert "\\ud800" in (run_dir / "manifest.json").read_text()
    out_file = root / "report.md"
    for command in READERS:
        code = main(["--root", str(root), *_args(command, run_dir, out_file)])
        out, err = capsys.readouterr()
        assert code == 0 and err == "", (command, err)
        out.encode("utf-8")  # printable
        if "--json" in command or "json" in command:
            assert json.loads(out)
        elif command[0] != "export":
            assert "n\\ud800x" in out, (command, out)
    assert "n\\ud800x" in out_file.read_text(encoding="utf-8")


@pytest.mark.slow
def test_a_huge_name_is_cut_on_screen_and_many_steps_are_bounded(
    root: Path, template_manifest: dict[str, Any]
) -> None:
    """A 5 MB run name is printed cut (with how much was cut), not laid out in a
    table for minutes; a run of 100,000 steps is refused in one line (readers accept
    up to 10,000); one of 10,000 steps shows the first and last rows and says how
    many it left out. (Their speed is measured in benchmarks/bench_hostile.py.)"""
    long = make_run(root, template_manifest, name="long", suffix="000001")
    doc = json.loads((long / "manifest.json").read_text())
    doc["name"] = "n" * 5_000_000
    (long / "manifest.json").write_text(json.dumps(doc))
    many = make_run(root, template_manifest, name="many", suffix="000002")
    doc = json.loads((many / "manifest.json").read_text())
    step = doc["steps"][0]
    doc["steps"] = [{**step, "index": i, "name": f"s{i}"} for i in range(100_000)]
    (many / "manifest.json").write_text(json.dumps(doc))
    some = make_run(root, template_manifest, name="some", suffix="000003")
    doc["steps"] = doc["steps"][:10_000]
    doc["run_id"] = some.name
    (some / "manifest.json").write_text(json.dumps(doc))

    for command in (["list"], ["show", long.name], ["summary", long.name], ["status", long.name]):
        proc = otel_cli(root, *command, timeout=HANG_S)
        assert proc.returncode == 0 and "Traceback" not in proc.stderr, (command, proc.stderr)
        assert len(proc.stdout) < 100_000, (command, len(proc.stdout))
        assert "characters)" in proc.stdout, command  # "… (+4,998,000 characters)"
    for command in (["show", many.name], ["summary", many.name], ["status", many.name]):
        proc = otel_cli(root, *command, timeout=HANG_S)
        assert proc.returncode == 2, (command, proc.stdout[:200])
        assert proc.stderr.count("\n") == 1 and "100,000 steps" in proc.stderr
        assert str(many / "manifest.json") in proc.stderr
    listed = otel_cli(root, "list", timeout=HANG_S)
    assert listed.stderr.count(str(many)) == 1 and "100,000 steps" in listed.stderr
    shown = otel_cli(root, "show", some.name, timeout=HANG_S)
    assert shown.returncode == 0, shown.stderr
    rows = [line for line in shown.stdout.splitlines() if line.split()[1:2] in (["s0"], ["s9999"])]
    assert len(rows) == 2 and "9,800 steps not shown" in shown.stdout
    assert len(shown.stdout.splitlines()) < 1000


@pytest.mark.parametrize("depth", [200, 900, 990])
def test_deeply_nested_data_is_shown_or_one_line(
    root: Path, template_manifest: dict[str, Any], capsys: pytest.CaptureFixture[str], depth: int
) -> None:
    """Params nested hundreds of levels deep parse (json's limit is about 1,000) but
    may exceed what a printer can recurse through: shown, or one line, never a traceback."""
    run_dir = make_run(root, template_manifest, name="deep")
    text = (run_dir / "manifest.json").read_text()
    (run_dir / "manifest.json").write_text(
        text.replace('"params":{}', '"params":{"p":' + "[" * depth + "]" * depth + "}", 1)
    )
    for command in READERS:
        code = main(["--root", str(root), *_args(command, run_dir, root / "x.md")])
        _, err = capsys.readouterr()
        _one_line_or_fine(code, err.replace("otel-tracker: warning:", ""), (depth, command))
