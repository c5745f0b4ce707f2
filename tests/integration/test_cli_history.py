"""The history commands: list, show, summary, export, recover."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from otel_tracker.cli.main import build_parser, main
from tests.helpers import (
    REPO,
    child_env,
    load_manifest,
    make_run,
    otel_cli,
    read_when,
    run_in_pty,
    start_script,
    wait_for,
)

# History sits 60 days back from today, so relative filters and "outdated" are stable.
T0 = (datetime.now(timezone.utc) - timedelta(days=60)).replace(
    hour=12, minute=0, second=0, microsecond=0
)
DAY1 = (T0 + timedelta(hours=12)).strftime("%Y-%m-%dT%H:%M:%SZ")


def cli(capsys: pytest.CaptureFixture[str], root: Path, *args: str) -> tuple[int, str, str]:
    code = main(["--root", str(root), *args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def history(root: Path, template_manifest: dict[str, Any]) -> list[Path]:
    specs = [
        ("imitation", "completed", "quick"),
        ("imitation", "failed", "full"),
        ("etl", "completed", None),
    ]
    return [
        make_run(
            root, template_manifest, name=n, status=s, scenario=sc, started=T0 + timedelta(days=i)
        )
        for i, (n, s, sc) in enumerate(specs)
    ]


def test_list_table_and_json(
    capsys: pytest.CaptureFixture[str], root: Path, history: list[Path]
) -> None:
    code, out, err = cli(capsys, root, "list")
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0].split() == [
        "run",
        "id",
        "name",
        "status",
        "started",
        "duration",
        "steps",
        "last",
        "completed",
        "step",
    ]
    assert [line.split()[0] for line in lines[1:]] == [p.name for p in history[::-1]]
    assert "imitation / full" in out and "failed" in out and "1m 30s" in out and "2/3" in out
    assert "\x1b[" not in out  # no colour codes in a pipe
    assert all(line == line.rstrip() for line in lines)
    code, out, _ = cli(capsys, root, "list", "--json", "--limit", "2")
    rows = json.loads(out)
    assert [r["run_id"] for r in rows] == [history[2].name, history[1].name]
    assert rows[1]["status"] == "failed" and rows[1]["last_completed_step"] == "b"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--status", "failed"], [1]),
        (["--status", "completed,failed"], [2, 1, 0]),
        (["--status", "completed", "--status", "failed"], [2, 1, 0]),
        (["--name", "etl"], [2]),
        (["--name", "imi*"], [1, 0]),
        (["--scenario", "quick"], [0]),
        (["--since", DAY1], [2, 1]),
        (["--until", DAY1], [0]),
        (["--limit", "1"], [2]),
        (["--all"], [2, 1, 0]),
        (["--outdated"], [2, 1, 0]),  # finished more than 30 days ago (the default)
        (["--since", "2d"], []),
        (["--since", "61d"], [2, 1, 0]),
    ],
)
def test_list_filters(
    capsys: pytest.CaptureFixture[str],
    root: Path,
    history: list[Path],
    args: list[str],
    expected: list[int],
) -> None:
    code, out, _ = cli(capsys, root, "list", "--json", *args)
    assert code == 0
    assert [r["run_id"] for r in json.loads(out)] == [history[i].name for i in expected]


def test_show_summary_export(
    capsys: pytest.CaptureFixture[str], root: Path, history: list[Path], tmp_path: Path
) -> None:
    code, out, _ = cli(capsys, root, "show", history[1].name[:15])
    assert code == 0
    for needle in (
        "imitation / full",
        "failed",
        "Evaluate" if False else "a",
        "4/4 (100%)",
        str(history[1]),
        "host / pid",
    ):
        assert needle in out
    code, text, _ = cli(capsys, root, "summary", "latest")
    assert code == 0 and history[2].name in text and "2/3 completed" in text
    code, raw, _ = cli(capsys, root, "summary", "latest", "--format", "json")
    report = json.loads(raw)
    assert report["run_id"] == history[2].name
    assert (
        report["figures"]["steps_completed"] == 2
        and report["figures"]["last_completed_step"] == "b"
    )
    # the same content in both: every step and figure of the JSON is in the text
    for step in report["steps"]:
        assert step["name"] in text and step["status"] in text
    md = tmp_path / "run.md"
    code, out, _ = cli(
        capsys, root, "export", "latest", "--format", "markdown", "--output", str(md)
    )
    assert code == 0 and str(md) in out
    markdown = md.read_text()
    assert markdown.startswith("# Run etl — completed")
    assert "| # | step | status | started | duration | progress | rate/s | note |" in markdown
    js = tmp_path / "run.json"
    assert cli(capsys, root, "export", history[0].name, "--format", "json", "-o", str(js))[0] == 0
    assert json.loads(js.read_text())["run_id"] == history[0].name
    code, raw, _ = cli(capsys, root, "show", "latest", "--json")
    assert json.loads(raw)["inferred_status"] == "completed"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["show", "nope"], "no run matches 'nope'"),
        (["show", "2026"], "is ambiguous"),
        (["list", "--since", "lastweek"], "bad date"),
        (["list", "--status", "weird"], "unknown status weird"),
        (["list", "--limit", "0"], "--limit must be at least 1"),
        (["export", "latest", "--output", "/nonexistent-dir/x.md"], "cannot write"),
    ],
)
def test_user_errors_are_one_line(
    capsys: pytest.CaptureFixture[str],
    root: Path,
    history: list[Path],
    args: list[str],
    message: str,
) -> None:
    code, _, err = cli(capsys, root, *args)
    assert code == 2
    assert err.startswith("otel-tracker: error: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_bad_manifest_warns_in_list_and_fails_show(
    capsys: pytest.CaptureFixture[str], root: Path, history: list[Path]
) -> None:
    bad = root / "20261130T000000.000Z-broken-abcdef"
    bad.mkdir()
    (bad / "manifest.json").write_text('{"schema_version": 1, "run_id": "trunc')
    code, out, err = cli(capsys, root, "list")
    assert code == 0 and len(out.splitlines()) == 4
    assert err.count("otel-tracker: warning:") == 1 and "not valid JSON" in err and str(bad) in err
    code, _, err = cli(capsys, root, "show", "20261130")
    assert code == 2 and "not valid JSON" in err


def _subparsers(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> list[Any]:
    """Every (command path, parser) of the real parser, nested ones too."""
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += [((*path, name), sub), *_subparsers(sub, (*path, name))]
    return found


def test_every_help_example_parses_and_names_files_that_exist() -> None:
    """Each command's ``--help`` shows examples; each example line is parsed by the
    real parser, and a file it names in a folder of this repository (``examples/``)
    exists. Commands come from the parser itself, so a new one is checked too."""
    commands = _subparsers(build_parser())
    assert len(commands) >= 15
    examples = 0
    for path, sub in commands:
        if len(path) == 1:  # nested actions (pipeline run) share their parent's examples
            assert sub.epilog and "example:" in sub.epilog, path
        for line in (sub.epilog or "").splitlines():
            if not line.startswith("  otel-tracker "):
                continue
            argv = shlex.split(line, comments=True)[1:]
            try:
                args = build_parser().parse_args(argv)
            except SystemExit as exc:
                pytest.fail(f"{path}: example {line.strip()!r} does not parse ({exc})")
            assert args.func, line
            examples += 1
            for arg in argv:
                parts = Path(arg).parts
                in_repo = len(parts) > 1 and parts[0] not in ("/", ".", "..")
                if in_repo and (REPO / parts[0]).is_dir():
                    assert (REPO / arg).exists(), f"{path}: example names {arg}, not in the repo"
    assert examples >= 25


def test_every_command_help_exits_0_and_shows_an_example(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``otel-tracker [COMMAND [ACTION]] --help`` for every command the parser really
    has, nested actions too: it exits 0, and an example line runs that command, in its
    own help or, for a nested action (``pipeline run``), in its command's help."""
    commands = [path for path, _ in _subparsers(build_parser())]
    assert {("list",), ("perf-test",), ("pipeline", "run"), ("baseline", "show")} <= set(commands)
    helps = {}
    for path in [(), *commands]:
        with pytest.raises(SystemExit) as exit_info:
            main([*path, "--help"])
        assert exit_info.value.code == 0, path
        helps[path] = capsys.readouterr().out
        assert helps[path].startswith("usage: otel-tracker"), path
    assert "\nexample:\n  otel-tracker demo\n" in helps[()]
    for path in commands:
        assert "\nexample:\n" in helps[path[:1]], path
        command = "  otel-tracker " + " ".join(path) + " "
        lines = (helps[path] + helps[path[:1]]).splitlines()
        assert any((line + " ").startswith(command) for line in lines), f"{path}: no example"


def test_reading_commands_do_not_import_the_sdk(root: Path, history: list[Path]) -> None:
    code = (
        "import sys; from otel_tracker.cli.main import main; "
        f"[main(['--root', {str(root)!r}] + a) for a in (['list'], ['show', 'latest'], ['summary', 'latest', '--format', 'json'], ['summary', 'latest', '--format', 'markdown'], ['baseline', 'list'])]; "
        "print('SDK', any(m.startswith('opentelemetry') for m in sys.modules), file=sys.stderr)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "SDK False" in proc.stderr


KILLABLE = """
import time
from otel_tracker import track_run
with track_run("killable", steps=["prepare", "train", "evaluate"], heartbeat_interval=0.1) as run:
    with run.step("prepare") as s:
        s.advance(3)
    with run.step("train") as s:
        s.set_total(1000)
        while True:
            s.advance()
            time.sleep(0.005)
"""


def test_sigkilled_run_is_aborted_while_a_live_one_stays_running(root: Path) -> None:
    killed = start_script(KILLABLE, root)
    wait_for(
        read_when(root, lambda d: d["steps"][1]["progress"]["completed"] > 0),
        what="first run in step 2",
    )
    first_dir = next(root.iterdir())
    killed.send_signal(signal.SIGKILL)
    killed.wait(timeout=10)
    alive = start_script(KILLABLE, root)
    try:
        wait_for(lambda: len(list(root.glob("*/manifest.json"))) == 2, what="second run")
        proc = otel_cli(root, "list", "--json")
        assert proc.returncode == 0, proc.stderr
        rows = {r["run_id"]: r for r in json.loads(proc.stdout)}
        dead = rows[first_dir.name]
        assert dead["status"] == "aborted" and dead["recorded_status"] == "running"
        assert dead["last_completed_step"] == "prepare"
        assert "run lock is released" in dead["status_reason"]
        (live,) = [r for r in rows.values() if r["run_id"] != first_dir.name]
        assert live["status"] == "running" and live["current_step"] == "train"

        show = otel_cli(root, "show", first_dir.name)
        assert (
            show.returncode == 0
            and "aborted" in show.stdout
            and "last completed  prepare" in show.stdout
        )
        refused = otel_cli(root, "recover", live["run_id"])
        assert refused.returncode == 2 and "is running" in refused.stderr
        recovered = otel_cli(root, "recover", first_dir.name)
        assert recovered.returncode == 0, recovered.stderr
        doc = load_manifest(first_dir / "manifest.json")
        assert doc["status"] == "aborted" and doc["steps"][1]["progress"]["completed"] > 0
    finally:
        alive.kill()
        alive.wait(timeout=10)


def test_terminal_gets_styled_table(root: Path, history: list[Path]) -> None:
    """On a real pseudo-terminal the table is ruled and the status coloured."""
    code, raw = run_in_pty(
        [sys.executable, "-m", "otel_tracker.cli", "--root", str(root), "list"],
        env={**child_env(root), "TERM": "xterm-256color", "COLUMNS": "200"},
    )
    assert code == 0
    out = raw.decode()
    assert "\x1b[" in out  # colour codes on a terminal
    assert "─" in out  # the header rule of the table
    assert history[0].name in out


def test_watch_exit_status_follows_the_run(
    capsys: pytest.CaptureFixture[str], root: Path, history: list[Path]
) -> None:
    code, out, _ = cli(capsys, root, "watch", history[1].name)  # a failed run
    assert code == 1 and "failed" in out
    code, out, _ = cli(capsys, root, "watch", history[0].name)  # a completed run
    assert code == 0 and "completed" in out


STARTING = """
import sys, time
from otel_tracker import track_run
from otel_tracker.contract import liveness

original = liveness.RunLock.acquire

def acquire(self, content=""):
    # the moment to be killed at: just after (or before) the run lock, before any manifest
    if sys.argv[1] == "after-lock":
        original(self, content)
    print("starting", flush=True)
    time.sleep(600)

liveness.RunLock.acquire = acquire
with track_run("startup", steps=["a"]):
    pass
"""


@pytest.mark.parametrize("moment", ["after-lock", "before-lock"])
def test_a_run_killed_during_start_up_is_shown_aborted(root: Path, moment: str) -> None:
    """SIGKILL between the run directory's creation and its first manifest leaves a
    directory holding only ``.lock`` (or nothing). While the process lives it is a run
    being created (not listed); once its lock is free it is a run ``aborted`` during
    start-up, listed and shown as such (with no lock, after the directory is a minute
    old); ``recover`` has nothing to finalize and says so."""
    proc = subprocess.Popen(
        [sys.executable, "-c", STARTING, moment],
        env=child_env(root),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "starting\n"
        (run_dir,) = root.iterdir()
        assert not (run_dir / "manifest.json").exists()
        listed = otel_cli(root, "list", "--json")
        assert listed.returncode == 0 and json.loads(listed.stdout) == [], listed
        assert listed.stderr == ""
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    if moment == "before-lock":
        assert not (run_dir / ".lock").exists()
        assert json.loads(otel_cli(root, "list", "--json").stdout) == []  # could be starting
        old = run_dir.stat().st_mtime - 3600
        os.utime(run_dir, (old, old))
    listed = otel_cli(root, "list", "--json")
    assert listed.returncode == 0 and listed.stderr == "", listed.stderr
    (row,) = json.loads(listed.stdout)
    assert row["run_id"] == run_dir.name and row["status"] == "aborted"
    assert "during start-up" in row["status_reason"]
    if moment == "after-lock":
        assert f"process {proc.pid} ended" in row["status_reason"]
    for command in (["list"], ["list", "--status", "aborted"], ["show", "latest"], ["status"]):
        shown = otel_cli(root, *command)
        assert shown.returncode == 0 and "aborted" in shown.stdout, (command, shown.stderr)
    refused = otel_cli(root, "recover", run_dir.name)
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1
    assert "no manifest.json to finalize" in refused.stderr
