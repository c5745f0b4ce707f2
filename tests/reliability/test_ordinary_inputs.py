"""Ordinary inputs never lose a run's record: many params, names that were not
UTF-8, the values a public call accepts, objects as params, calls after the end.

Each test checks the class of input, not one example, and reads the result back
the way users do: the manifest against its schema, and every read command.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import enum
import io
import json
import logging
import math
import os
import subprocess
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from otel_tracker import ConfigError, track_run
from otel_tracker.cli.main import main as cli_main
from otel_tracker.config import ReaderConfig
from otel_tracker.history.store import RunStore
from tests.helpers import child_env, load_manifest, only_manifest, otel_cli, run_script

READ_COMMANDS = (("list",), ("show", "latest"), ("summary", "latest"), ("status", "latest"))


def _run(root: Path, **kw: Any) -> Any:
    kw.setdefault("install_signal_handlers", False)
    kw.setdefault("progress", "off")
    return track_run(kw.pop("name", "ordinary"), root=root, **kw)


def _cli(root: Path, *args: str) -> tuple[int, str, str]:
    """The CLI in this process (hundreds of reads: a subprocess each would take minutes)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli_main(["--root", str(root), *args])
        except SystemExit as exc:
            code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()


def _every_reader_reads(root: Path) -> None:
    for command in READ_COMMANDS:
        code, _, err = _cli(root, *command)
        assert code == 0 and "Traceback" not in err, (command, err)
    out = root.parent / "export.md"
    code, _, err = _cli(root, "export", "latest", "--format", "markdown", "--output", str(out))
    assert code == 0 and out.stat().st_size, err


def _nested(leaves: int) -> dict[str, Any]:
    return {f"group{g}": {f"leaf{i}": i * 0.5 for i in range(10)} for g in range(leaves // 10)}


@pytest.mark.parametrize(
    "params",
    [
        {f"p{i}": i for i in range(124)},
        {f"p{i}": f"value-{i}" for i in range(130)},
        _nested(150),
        {f"key{i}": i for i in range(20_000)},
    ],
    ids=["124", "130-strings", "150-nested", "20000"],
)
@pytest.mark.parametrize("fails", [False, True], ids=["completed", "failed"])
def test_a_run_with_many_params_is_recorded_as_it_ended(
    root: Path, params: dict[str, Any], fails: bool, in_memory_spans: Any, caplog: Any
) -> None:
    exporter, processor = in_memory_spans
    caplog.set_level(logging.WARNING)
    expected = pytest.raises(RuntimeError) if fails else contextlib.nullcontext()
    run = _run(root, steps=["a"], params=params, span_processors=[processor])
    with expected, run, run.step("a"):
        if fails:
            raise RuntimeError("boom")
    doc = only_manifest(root)
    assert doc["status"] == ("failed" if fails else "completed")
    assert doc["started_at"] and doc["duration_s"] is not None
    assert doc["params"] == json.loads(json.dumps(params))  # the manifest keeps every one
    (view,) = RunStore(config=ReaderConfig.resolve(root=root, environ={})).list(limit=None)
    assert view.status == doc["status"]
    span = next(s for s in exporter.get_finished_spans() if s.name == "RUN ordinary")
    assert span.attributes["cicd.pipeline.run.id"] == run.run_id
    shown = [k for k in span.attributes if k.startswith("otel_tracker.param.")]
    assert len(shown) <= 64 and len(span.attributes) < 128
    leaves = sum(len(v) if isinstance(v, dict) else 1 for v in params.values())
    assert span.attributes.get("otel_tracker.params.omitted", 0) == leaves - len(shown)
    assert "Attributes dict is full" not in caplog.text


def test_the_sdks_span_limits_never_change_the_manifest(root: Path) -> None:
    # OTEL_SPAN_* limits are for the application's spans; ours feed the manifest
    code = """
    from otel_tracker import track_run
    with track_run("limits", steps=["a", "b"], params={"seed": 1}, progress="off") as run:
        with run.step("a") as step:
            step.advance(3)
        run.skip("b", reason="a long reason that a value length limit would cut")
    """
    proc = run_script(
        code,
        root,
        OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT="2",
        OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT="3",
        OTEL_SPAN_EVENT_COUNT_LIMIT="0",
    )
    assert proc.returncode == 0, proc.stderr
    doc = only_manifest(root)
    assert doc["status"] == "completed"
    assert [s["status"] for s in doc["steps"]] == ["completed", "skipped"]
    assert doc["steps"][1]["skip_reason"].endswith("would cut")


# -- names that were not UTF-8 where they came from ------------------------------------------

UNDECODABLE = [b"model-\xe9t\xe9.pt", b"ckpt-\xff.pt", b"\xc3\x28-\x80"]


@pytest.mark.parametrize("raw", UNDECODABLE)
def test_names_that_are_not_utf8_are_kept_escaped_and_the_run_completes(
    root: Path, raw: bytes
) -> None:
    name = os.fsdecode(raw)
    with _run(root, name=name, scenario=name, steps=[name], params={name: name}) as run:
        with run.step(name) as step:
            step.add_artifact(name, kind=name)
        run.add_artifact(Path(name))
        run.skip(name + "-skipped", reason=name)
        run.log_scores({name: 1.0})
    manifest = next(root.glob("*/manifest.json"))
    manifest.read_bytes().decode("utf-8")  # strict UTF-8: every reader can read it
    doc = load_manifest(manifest)
    escaped = raw.decode("utf-8", "backslashreplace")
    assert doc["status"] == "completed"
    assert doc["name"] == doc["scenario"] == doc["steps"][0]["name"] == escaped
    assert doc["steps"][0]["artifacts"][0]["path"] == escaped
    assert doc["params"] == {escaped: escaped}
    assert doc["steps"][1]["skip_reason"] == escaped
    _every_reader_reads(root)
    assert escaped in otel_cli(root, "show", "latest").stdout  # and in a real process


def test_a_wrapped_command_that_writes_a_non_utf8_file_name_completes(
    root: Path, tmp_path: Path
) -> None:
    work = tmp_path / os.fsdecode(b"dir-\xff")  # the working directory too
    work.mkdir()
    script = "import sys; open(sys.argv[1].encode('utf-8', 'surrogateescape'), 'wb').write(b'x')"
    argv = [sys.executable, "-c", script, os.fsdecode(b"model-\xe9t\xe9.pt")]
    proc = subprocess.run(
        [sys.executable, "-m", "otel_tracker.cli", "--root", str(root), "run", "--", *argv],
        env=child_env(root, OTEL_TRACKER_PROGRESS="off"),
        cwd=work,
        capture_output=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    doc = only_manifest(root)
    assert doc["status"] == "completed"
    paths = [a["path"] for s in doc["steps"] for a in s["artifacts"]] + [
        a["path"] for a in doc["artifacts"]
    ]
    assert any(p.endswith("model-\\xe9t\\xe9.pt") for p in paths), paths
    assert doc["process"]["cwd"].endswith("dir-\\xff")
    _every_reader_reads(root)


# -- every value a public call accepts is one every reader reads ------------------------------


class Color(enum.Enum):
    RED = "red"
    ONE = 1


VALUES: list[Any] = [
    Path("configs/a.yaml"),
    Color.RED,
    Color.ONE,
    123,
    1.5,
    "3",
    math.nan,
    b"bytes",
    np.int64(3),
    True,
    -1,
]
CALLS: dict[str, Callable[[Any, Any], None]] = {
    "scenario": lambda root, v: _whole_run(root, scenario=v),
    "kind": lambda root, v: _whole_run(root, kind=v),
    "unit": lambda root, v: _whole_run(root, unit=v),
    "set_total unit": lambda root, v: _whole_run(root, set_total_unit=v),
    "epoch": lambda root, v: _whole_run(root, epoch=v),
    "artifact kind": lambda root, v: _whole_run(root, artifact_kind=v),
    "artifact path": lambda root, v: _whole_run(root, artifact_path=v),
}


def _whole_run(
    root: Path,
    *,
    unit: Any = None,
    set_total_unit: Any = None,
    epoch: Any = None,
    artifact_kind: Any = None,
    artifact_path: Any = "out.bin",
    **run_kw: Any,
) -> None:
    with _run(root, steps=["a"], resources=False, **run_kw) as run:
        with run.step("a", total=2, unit=unit) as step:
            step.set_total(2, set_total_unit)
            step.advance(2)
            step.add_artifact(artifact_path, kind=artifact_kind)
        run.log_scores({"acc": 0.5}, epoch=epoch)


@pytest.mark.parametrize("call", list(CALLS))
def test_every_accepted_value_is_one_every_reader_reads(tmp_path: Path, call: str) -> None:
    outcomes = []
    for i, value in enumerate(VALUES):
        root = tmp_path / f"v{i}" / "runs"
        try:
            CALLS[call](root, value)
        except ConfigError as exc:
            assert "\n" not in str(exc)
            if call in ("scenario", "kind"):  # refused before the run exists
                assert not root.exists() or not any(root.iterdir())
            else:  # refused inside a step: the run failed with the error, readable
                assert only_manifest(root)["status"] == "failed"
                _every_reader_reads(root)
            outcomes.append("refused")
            continue
        doc = only_manifest(root)  # validates against the schema
        assert doc["status"] == "completed", (call, value)
        _every_reader_reads(root)
        outcomes.append("recorded")
    assert "recorded" in outcomes and "refused" in outcomes, outcomes


# -- objects, cycles and depth as params ------------------------------------------------------


@dataclasses.dataclass
class TrainConfig:
    lr: float
    layers: list[int]


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no str")


def _cyclic() -> dict[str, Any]:
    d: dict[str, Any] = {"a": 1}
    d["self"] = d
    return d


def _deep(levels: int) -> dict[str, Any]:
    top = node = {}
    for _ in range(levels):
        node["n"] = {}
        node = node["n"]
    return top


def test_objects_cycles_and_depth_in_params_never_fail_the_run(root: Path) -> None:
    params = {
        "cfg": TrainConfig(0.1, [64, 64]),
        "args": argparse.Namespace(epochs=3, data=Path("/data")),
        "ns": types.SimpleNamespace(seed=1),
        "tags": {"b", "a"},
        "color": Color.RED,
        "cyclic": _cyclic(),
        "deep": _deep(5000),
        "odd": Unprintable(),
        "loss": np.float32(0.25),
        "inf": math.inf,
    }
    with _run(root, steps=["a"], params=params) as run, run.step("a"):
        pass
    recorded = only_manifest(root)["params"]
    assert recorded["cfg"] == {"lr": 0.1, "layers": [64, 64]}
    assert recorded["args"] == {"epochs": 3, "data": "/data"}
    assert recorded["ns"] == {"seed": 1} and recorded["tags"] == ["a", "b"]
    assert recorded["color"] == "red" and recorded["loss"] == 0.25 and recorded["inf"] == "inf"
    assert recorded["cyclic"] == {"a": 1, "self": "<cycle>"}
    assert "too deep" in json.dumps(recorded["deep"])
    assert recorded["odd"] == "<unprintable Unprintable: RuntimeError>"
    _every_reader_reads(root)


def test_a_refused_run_leaves_no_directory(root: Path) -> None:
    for bad in (
        {"params": ["not", "a", "mapping"]},
        {"steps": ["a", "a"]},
        {"scenario": 123},
        {"expected_durations": {"a": "soon"}},
    ):
        with pytest.raises(ConfigError):
            _run(root, **bad)
    assert not root.exists() or list(root.iterdir()) == []


# -- after the end --------------------------------------------------------------------------


def test_calls_after_the_end_never_touch_the_final_manifest(root: Path, caplog: Any) -> None:
    caplog.set_level(logging.WARNING, logger="otel_tracker")
    with _run(root, steps=["a"]) as run, run.step("a") as step:
        pass
    manifest = Path(run.manifest_path)
    final = manifest.read_bytes()
    late = run.step("late")
    with late as s:
        s.advance()
    run.add_artifact("late.bin")
    step.add_artifact("late.bin")
    run.log_scores({"acc": 1.0})
    run.skip("later", reason="too late")
    run.set_gauge("fps", 1.0)
    run.add_count("episodes")
    run.end()
    assert manifest.read_bytes() == final
    doc = load_manifest(manifest)
    assert [s["name"] for s in doc["steps"]] == ["a"] and doc["steps_completed"] == 1
    warnings = [r for r in caplog.records if "has ended" in r.getMessage()]
    assert len(warnings) == 1


# -- settings -------------------------------------------------------------------------------

FLAGS = (
    "enabled",
    "tensorboard",
    "resources",
    "install_signal_handlers",
    "summary_files",
    "join",
    "sample_in_subprocess",
    "attach_context",
)


@pytest.mark.parametrize("flag", FLAGS)
@pytest.mark.parametrize("value", ["false", "true", "", 0, 1])
def test_an_on_off_setting_refuses_anything_but_a_bool(root: Path, flag: str, value: Any) -> None:
    # "false" is truthy: before, enabled="false" tracked and tensorboard="false" mirrored
    with pytest.raises(ConfigError) as raised:
        track_run("flags", root=root, **{flag: value})
    assert flag in str(raised.value) and "\n" not in str(raised.value)
    assert not root.exists()


@pytest.mark.parametrize("root_value", [123, 1.5, b"bytes", ["a"]])
def test_a_root_that_is_not_a_path_is_a_config_error(root_value: Any) -> None:
    with pytest.raises(ConfigError, match="root must be a path"):
        track_run("roots", root=root_value)


@pytest.mark.parametrize("setting", ["sample_interval", "heartbeat_interval", "progress_interval"])
def test_intervals_too_short_to_be_useful_are_raised_to_a_floor_with_one_warning(
    root: Path, setting: str, caplog: Any
) -> None:
    caplog.set_level(logging.WARNING, logger="otel_tracker")
    with _run(root, **{setting: 1e-6}) as run:
        assert getattr(run.config, setting) == 0.05
    floors = [r for r in caplog.records if "below" in r.getMessage()]
    assert len(floors) == 1 and setting in floors[0].getMessage()


def test_a_file_as_root_is_one_warning_line_each_and_the_command_still_runs(
    tmp_path: Path,
) -> None:
    not_a_dir = tmp_path / "root-file"
    not_a_dir.write_text("in the way")
    command = [sys.executable, "-c", "print('ran')"]
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "otel_tracker.cli",
            "--root",
            str(not_a_dir),
            "run",
            "--",
            *command,
        ],
        env={k: v for k, v in os.environ.items() if not k.startswith("OTEL_")},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0 and "ran" in proc.stdout, proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("otel-tracker")]
    assert "Traceback" not in proc.stderr and len(warnings) == 1, proc.stderr
    # the prefix once: not "otel-tracker: WARNING: otel-tracker cannot ..."
    assert warnings[0].startswith("otel-tracker: warning: cannot create a run directory")
    assert warnings[0].count("otel-tracker") == 1
