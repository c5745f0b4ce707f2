"""The default name of ``otel-tracker run -- CMD``: the script's, not the interpreter's."""

from __future__ import annotations

import pytest

from otel_tracker.launch.command import run_name


@pytest.mark.parametrize(
    ("argv", "name"),
    [
        (["python", "train.py", "--epochs", "3"], "train"),
        (["python3.11", "-u", "scripts/eval.py"], "eval"),
        (["/usr/bin/python3", "-X", "dev", "prep.py"], "prep"),
        (["pypy3", "run.py"], "run"),
        (["python", "-m", "pkg.train", "--lr", "0.1"], "pkg.train"),
        (["python3", "-mpkg.serve"], "pkg.serve"),
        (["python3", "-c", "print(1)"], "python3"),
        (["python"], "python"),
        (["./etl.sh", "--full"], "etl.sh"),
        (["make", "train"], "make"),
        (["pythonista", "x.py"], "pythonista"),
    ],
)
def test_a_python_command_is_named_after_its_script_or_module(argv: list[str], name: str) -> None:
    assert run_name(argv) == name
