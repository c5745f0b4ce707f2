"""Wrapped commands and pipeline files have params too: the command's long options,
``--param``, a pipeline file's ``params`` table; ``--key-params`` (or the file's
``key_params``) keys their ETA history and baselines on the configuration."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path
from typing import Any

from tests.helpers import load_manifest, manifests, otel_cli

SCRIPT = "import sys; print('epochs', sys.argv[sys.argv.index('--epochs') + 1])\n"


def _wrapped(root: Path, script: Path, *options: str, epochs: int, seed: int) -> dict[str, Any]:
    before = set(manifests(root))
    done = otel_cli(
        root,
        "run",
        *options,
        "--",
        sys.executable,
        str(script),
        "--epochs",
        str(epochs),
        "--seed",
        str(seed),
        "--api-key",
        "hunter2-secret",
        OTEL_TRACKER_PROGRESS="off",
    )
    assert done.returncode == 0, done.stderr
    (new,) = set(manifests(root)) - before
    return load_manifest(new)


def test_a_wrapped_commands_options_are_params_and_key_its_history(
    root: Path, tmp_path: Path
) -> None:
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    key = ("--key-params", "epochs", "--param", "team=vision")
    first = _wrapped(root, script, *key, epochs=5, seed=1)
    assert first["name"] == "train"
    params = first["params"]
    assert {k: params[k] for k in ("epochs", "seed", "api_key", "team")} == {
        "epochs": 5,
        "seed": 1,
        "api_key": "***",
        "team": "vision",
    }
    assert "hunter2" not in json.dumps(first)
    assert first["history_key"]["params"] == {"epochs": 5}
    second = _wrapped(root, script, *key, epochs=5, seed=2)
    assert second["eta"]["history_runs"] == 1  # the first run: same epochs, other seed
    assert second["steps"][0]["expected_source"] == "history"
    other = _wrapped(root, script, *key, epochs=1, seed=3)
    assert other["eta"]["history_runs"] == 0  # five epochs say nothing about one
    assert "expected_source" not in other["steps"][0] or (
        other["steps"][0]["expected_source"] != "history"
    )
    listed = otel_cli(root, "list", "--columns", "params.epochs", "--where", "params.epochs > 2")
    assert len(listed.stdout.splitlines()) == 3, listed.stdout  # the header and two runs
    ignoring = _wrapped(root, script, "--ignore-params", "seed,command", epochs=1, seed=4)
    assert ignoring["history_key"]["params"] == {"api_key": "***", "epochs": 1}


def test_params_options_fail_in_one_line(root: Path) -> None:
    for options, message in (
        (("--param", "lr"), "--param takes KEY=VALUE, got 'lr'"),
        (("--key-params", "a", "--ignore-params", "b"), "not both"),
        (("--key-params", "a,,b"), "expected NAME[,NAME...]"),
    ):
        done = otel_cli(root, "run", *options, "--", "true", OTEL_TRACKER_PROGRESS="off")
        assert done.returncode != 0 and message in done.stderr, done.stderr
        assert "Traceback" not in done.stderr
    assert not manifests(root)


def test_a_pipeline_files_params_and_key_params(root: Path, tmp_path: Path) -> None:
    def pipeline(epochs: int) -> dict[str, Any]:
        path = tmp_path / "train.toml"
        path.write_text(
            textwrap.dedent(
                f"""
                name = "nightly"
                params = {{ epochs = {epochs}, seed = 7, data = {{ n = 100 }} }}
                key_params = ["epochs", "data.n"]

                [[steps]]
                name = "Fit"
                command = ["{sys.executable}", "-c", "pass"]
                """
            )
        )
        before = set(manifests(root))
        done = otel_cli(
            root, "pipeline", "run", str(path), "--param", "note=cli", OTEL_TRACKER_PROGRESS="off"
        )
        assert done.returncode == 0, done.stderr
        (new,) = set(manifests(root)) - before
        return load_manifest(new)

    first = pipeline(epochs=2)
    assert first["params"]["epochs"] == 2 and first["params"]["data"] == {"n": 100}
    assert first["params"]["note"] == "cli" and first["params"]["pipeline_file"].endswith(".toml")
    assert first["history_key"]["params"] == {"data.n": 100, "epochs": 2}
    assert pipeline(epochs=2)["eta"]["history_runs"] == 1
    assert pipeline(epochs=9)["eta"]["history_runs"] == 0
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\nkey_params = "epochs"\n[[steps]]\nname = "a"\ncommand = "true"\n')
    refused = otel_cli(root, "pipeline", "check", str(bad))
    assert "key_params must be a list of param names" in refused.stderr, refused.stderr
