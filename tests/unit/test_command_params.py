"""A wrapped command's long options become the run's params."""

from __future__ import annotations

from typing import Any

import pytest

from otel_tracker import ConfigError
from otel_tracker.launch.command_params import command_options, explicit_params


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["python", "train.py", "--epochs", "3", "--lr=1e-3"], {"epochs": 3, "lr": 0.001}),
        (["./etl.sh", "--amp", "--out", "x.csv"], {"amp": True, "out": "x.csv"}),
        (["prog", "--offset", "-5", "--verbose", "-n", "2"], {"offset": -5, "verbose": True}),
        (["prog", "--learning-rate", ".5"], {"learning_rate": 0.5}),
        (["prog", "--tag", "a", "--tag", "b", "--tag=c"], {"tag": ["a", "b", "c"]}),
        (["prog", "--n", "nan", "--m", "1e999"], {"n": "nan", "m": "1e999"}),
        (["prog", "--x", "1", "--", "--y", "2"], {"x": 1}),
        (["prog", "--command", "rm", "--pipeline-file", "f", "--=3", "--9x", "1"], {}),
        (["prog", "--api-key", "***", "--ok"], {"api_key": "***", "ok": True}),
        (["prog", "--empty="], {"empty": ""}),
    ],
)
def test_long_options_are_read_as_argparse_would_name_them(
    argv: list[str], expected: dict[str, Any]
) -> None:
    assert command_options(argv) == expected


def test_a_long_command_line_keeps_the_first_options_only() -> None:
    argv = ["prog", *(f"--o{i}" for i in range(500))]
    assert len(command_options(argv)) == 64


def test_explicit_params_are_key_value_pairs() -> None:
    assert explicit_params(["a=1", "b=x=y", " c =0.5", "d="]) == {
        "a": 1,
        "b": "x=y",
        "c": 0.5,
        "d": "",
    }
    with pytest.raises(ConfigError, match="--param takes KEY=VALUE, got 'lr'"):
        explicit_params(["lr"])
