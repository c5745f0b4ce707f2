"""A damaged or hand-edited baseline never crashes a reader: every field in turn.

Like tests/reliability/test_damaged_manifests.py does for manifests: each value of
a real baseline (made by ``baseline create`` and ``update`` from real runs), in
turn of the wrong type or missing, through every command that reads baselines.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from otel_tracker.cli.main import main
from tests.reliability.test_damaged_manifests import damaged

STEPS = ["load", "train"]


def _real_runs(root: Path, n: int) -> list[str]:
    from otel_tracker import track_run

    ids = []
    for i in range(n):
        with track_run(
            "pipeline", root=root, steps=STEPS, install_signal_handlers=False, progress="off"
        ) as run:
            for name in STEPS:
                with run.step(name) as step:
                    step.set_total(10, unit="batches")
                    step.advance(10)
            run.log_scores(
                {"accuracy": 0.5 + i / 10, "loss": 1.0 - i / 10}, direction={"loss": "min"}
            )
        ids.append(run.run_id)
    return ids


@pytest.fixture
def baseline(root: Path, capsys: pytest.CaptureFixture[str]) -> tuple[Path, list[str]]:
    ids = _real_runs(root, 3)
    assert main(["--root", str(root), "baseline", "create", "--from", ids[0]]) == 0
    assert main(["--root", str(root), "baseline", "update", "pipeline", "--from", ids[1]]) == 0
    capsys.readouterr()
    return root / "baselines" / "pipeline.json", ids


@pytest.mark.slow
def test_a_field_of_the_wrong_type_anywhere_is_one_clear_error_never_a_traceback(
    root: Path,
    baseline: tuple[Path, list[str]],
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """``baseline show``/``list``/``update`` and the reports that judge a run against
    its baseline (``summary``, ``show``, ``export``): the baseline is shown or used,
    or one line says which file is wrong; a report with an unreadable default
    baseline says so and uses the default thresholds. Never a traceback, on
    stderr or in the log."""
    path, ids = baseline
    good = json.loads(path.read_text())
    assert good["steps"]["train"]["throughput"] and good["scores"]["accuracy"]
    commands = [
        (["baseline", "show", "pipeline"], False),
        (["baseline", "show", "pipeline", "--json"], False),
        (["baseline", "list"], True),
        (["baseline", "update", "pipeline", "--from", ids[2]], False),
        (["summary", ids[2]], True),
        (["summary", ids[2], "--format", "json"], True),
        (["show", ids[2]], True),
        (["summary", ids[2], "--baseline", "pipeline"], False),
        (["export", ids[2], "--output", str(root / "report.md"), "--baseline", str(path)], False),
    ]
    mutations = 0
    for where, change, doc in damaged(good):
        mutations += 1
        for command, always_works in commands:
            path.write_text(json.dumps(doc))
            caplog.clear()
            code = main(["--root", str(root), *command])
            _out, err = capsys.readouterr()
            case = (where, change, command)
            assert "Traceback" not in err, case
            assert not [r for r in caplog.records if r.exc_info], case
            assert code in (0, 2), case
            if always_works:
                assert code == 0, (case, err)
            if code == 2:
                assert err.startswith("otel-tracker: error: ") and err.count("\n") == 1, case
                # it names the file (or, for a valid one, why the run does not fit it)
                assert "pipeline.json" in err or "different pipelines" in err, case
    assert mutations > 100


@pytest.mark.parametrize(
    "content",
    [b"", b"{", b"\xff\xfe", b"[]", b"null", b'{"baseline_version": true}', b"1" + b"0" * 400],
)
def test_unreadable_baseline_files_are_one_line(
    root: Path,
    baseline: tuple[Path, list[str]],
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    content: bytes,
) -> None:
    path, ids = baseline
    path.write_bytes(content)
    for command in (
        ["baseline", "show", "pipeline"],
        ["summary", ids[2], "--baseline", "pipeline"],
    ):
        code = main(["--root", str(root), *command])
        _, err = capsys.readouterr()
        assert code == 2 and err.count("\n") == 1 and str(path) in err, (command, err)
    caplog.set_level(logging.WARNING)
    code = main(["--root", str(root), "summary", ids[2]])
    out, err = capsys.readouterr()
    assert code == 0 and "Traceback" not in err and str(path) in out
    assert not [r for r in caplog.records if r.exc_info]
