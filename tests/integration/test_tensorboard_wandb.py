"""What a wrapped script wrote for TensorBoard and W&B is in its run: scalars as
series, hparams and W&B's config as params (shown by show/compare, source named);
artifacts are found while the command runs; ``otel-tracker tensorboard`` serves the
run's event files with TensorBoard's HTTP API and leaves nothing behind."""

from __future__ import annotations

import json
import os
import pty
import select
import socket
import sys
import textwrap
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.helpers import child_env, otel_cli, read_when, validate_manifest, wait_for, wrap
from tests.terminal import Terminal

WANDB_RUN = "offline-run-20261203_101500-ab12cd34"

# A training script as people write them: TensorBoard writers (Keras' train/validation
# layout, hparams) and a W&B offline run as wandb leaves it (no wandb package here).
TRAIN = textwrap.dedent(
    f"""
    import json, os, sys, time
    from pathlib import Path
    from tensorboardX import SummaryWriter

    lr = float(sys.argv[1])
    Path("ckpt").mkdir()
    Path("ckpt/epoch1.pt").write_bytes(b"weights")
    deadline = time.monotonic() + 60
    while not Path("go").exists() and time.monotonic() < deadline:
        time.sleep(0.02)  # the test says go once the live record shows the checkpoint
    for name, scale in (("train", 1.0), ("validation", 1.25)):
        writer = SummaryWriter(f"logs/{{name}}")
        for i in range(30):
            writer.add_scalar("epoch_loss", scale * lr * 100 / (i + 1), i)
        if name == "train":
            writer.add_hparams({{"lr": lr, "optimizer": "adam"}}, {{"hparam/accuracy": 0.9}})
        writer.close()
    files = Path("wandb/{WANDB_RUN}/files")
    files.mkdir(parents=True)
    (files / "wandb-summary.json").write_text(json.dumps({{
        "val": {{"accuracy": 0.75 + lr}}, "epoch": 29, "_step": 29, "_runtime": 4.5,
        "_timestamp": time.time(), "_wandb": {{"runtime": 4}},
        "examples": {{"_type": "images/separated", "count": 4}},
    }}))
    (files / "config.yaml").write_text(
        "wandb_version: 1\\n\\n_wandb:\\n  desc: null\\n  value:\\n    cli_version: 0.19.1\\n"
        f"lr:\\n  desc: null\\n  value: {{lr}}\\nbatch_size:\\n  desc: null\\n  value: 64\\n"
    )
    os.symlink("{WANDB_RUN}", "wandb/latest-run")
    """
)


def _run(root: Path, workdir: Path, lr: str, *, live: bool) -> dict[str, Any]:
    workdir.mkdir()
    (workdir / "train.py").write_text(TRAIN)
    if not live:
        (workdir / "go").touch()
    proc = wrap(
        root,
        sys.executable,
        "train.py",
        lr,
        cwd=workdir,
        OTEL_TRACKER_ARTIFACT_SCAN_INTERVAL="0.1",
    )
    if live:  # the checkpoint is in the record while the command still runs
        doc = wait_for(
            read_when(
                root,
                lambda d: any(
                    a["path"].endswith("epoch1.pt") and a["kind"] == "checkpoint"
                    for a in d["artifacts"]
                ),
            ),
            timeout=60,
            what="the live checkpoint",
        )
        assert doc["status"] == "running"
        (workdir / "go").touch()
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    return {"stdout": out, "stderr": err}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    base = tmp_path_factory.mktemp("tb-wandb")
    root = base / "runs"
    _run(root, base / "first", "0.01", live=True)
    _run(root, base / "second", "0.02", live=False)
    ids = sorted(p.name for p in root.iterdir() if (p / "manifest.json").exists())
    assert len(ids) == 2
    return root, ids


def test_scalars_hparams_and_wandb_become_the_runs_series_and_params(runs):
    root, (first, _second) = runs
    doc = validate_manifest(json.loads((root / first / "manifest.json").read_text()))
    keys = doc["metrics"]["keys"]
    # two TensorBoard directories with the same tag: each named by its directory
    train, validation = keys["train/epoch_loss"], keys["validation/epoch_loss"]
    assert train["source"] == "tensorboard:logs/train"
    assert validation["source"] == "tensorboard:logs/validation"
    assert (train["count"], train["first_step"], train["last_step"]) == (30, 0, 29)
    assert train["max"] == 1.0 and validation["max"] == 1.25  # float32 read back as written
    # W&B: the summary's numbers at its _step, nested ones flattened; media and _keys left out
    assert keys["val.accuracy"]["last"] == 0.76 and keys["val.accuracy"]["last_step"] == 29
    assert keys["val.accuracy"]["source"] == f"wandb:wandb/{WANDB_RUN}"
    assert keys["epoch"]["last"] == 29
    # add_hparams' session folder (named by a timestamp) goes by its writer's name
    assert keys["train/hparam/accuracy"]["last"] == 0.9
    assert not [k for k in keys if k.startswith(("_", "examples"))]
    assert doc["params"]["wandb"] == {"lr": 0.01, "batch_size": 64}
    assert doc["params"]["tensorboard"] == {"lr": 0.01, "optimizer": "adam"}
    # the points keep TensorBoard's steps and times
    lines = [json.loads(line) for line in (root / first / "metrics.jsonl").read_text().splitlines()]
    line = next(x for x in lines if x["key"] == "train/epoch_loss")
    assert line["step"] == list(range(30)) and all(t > 1.7e9 for t in line["time"])
    # found once: W&B's latest-run link is not a second run
    wandb = [a for a in doc["artifacts"] if a["kind"] == "wandb"]
    assert [Path(a["path"]).name for a in wandb] == [WANDB_RUN]

    shown = otel_cli(root, "show", first)
    assert shown.returncode == 0, shown.stderr
    # as a person reads it: a long row wraps at the table's width, wherever that falls
    text = " ".join(shown.stdout.split())
    assert "30 points, from TensorBoard logs/train)" in text
    assert f"from W&B wandb/{WANDB_RUN})" in text
    assert 'wandb={"lr": 0.01, "batch_size": 64}' in text


def test_compare_sets_runs_side_by_side_by_their_wandb_config(runs):
    root, (first, second) = runs
    compared = otel_cli(root, "compare", first, second)
    assert compared.returncode == 0, compared.stderr
    rows = {line.split()[0]: line.split()[1:] for line in compared.stdout.splitlines() if line}
    assert rows["params.wandb.lr"] == ["0.01", "0.02"]
    assert rows["params.tensorboard.lr"] == ["0.01", "0.02"]
    assert rows["train/epoch_loss"][:3] == ["(TensorBoard)", "0.03333", "0.06667"]
    assert "params.wandb.batch_size" not in rows  # the same in both


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())


def _serving(term: Terminal) -> str:
    screen = term.wait_screen(lambda lines: any("tensorboard: http" in x for x in lines), 60)
    return next(x for x in screen if "tensorboard: http" in x).split()[-1]


def _closed(url: str) -> bool:
    host, port = urllib.parse.urlsplit(url).netloc.split(":")
    with socket.socket() as probe:
        return probe.connect_ex((host, int(port))) != 0


def test_tensorboard_serves_the_runs_and_stops_cleanly_on_ctrl_c_and_hangup(runs):
    root, (first, second) = runs
    argv = [sys.executable, "-m", "otel_tracker.cli", "--root", str(root), "tensorboard"]
    with Terminal([*argv, first, second], child_env(root)) as term:
        url = _serving(term)
        assert url.startswith("http://127.0.0.1:")
        names = wait_for(lambda: _get(url + "data/runs"), 30, "TensorBoard's runs")
        train = f"{first}/logs/train/."
        assert train in names and f"{second}/logs/validation/." in names
        tags = _get(url + "data/plugin/scalars/tags")
        assert "epoch_loss" in tags[train]
        query = urllib.parse.urlencode({"run": train, "tag": "epoch_loss"})
        points = _get(url + "data/plugin/scalars/scalars?" + query)
        assert [p[1] for p in points] == list(range(30)) and points[0][2] == pytest.approx(1.0)
        process = psutil.Process(term.pid)
        helpers = process.children(recursive=True)  # no data server: --load_fast=false
        term.write(b"\x03")  # Ctrl-C, through the terminal's line discipline
        assert term.wait(30) == 0
        assert not [p for p in helpers if p.is_running()] and _closed(url)

    # the terminal window closes: the kernel hangs up its session
    pid, fd = pty.fork()
    if pid == 0:
        try:
            os.execvpe(argv[0], [*argv, "latest"], child_env(root))
        finally:
            os._exit(127)
    try:
        seen = b""
        while b"tensorboard: http" not in seen or not seen.rstrip(b" ").endswith(b"\n"):
            ready, _, _ = select.select([fd], [], [], 60)
            assert ready, seen
            seen += os.read(fd, 65536)
        url = seen.split(b"tensorboard: ")[1].split()[0].decode()
    finally:
        os.close(fd)
    _, status = wait_for(lambda: _reaped(pid), 30, "the hung-up server")
    assert os.waitstatus_to_exitcode(status) == 0 and _closed(url)


def _reaped(pid: int) -> tuple[int, int] | None:
    done, status = os.waitpid(pid, os.WNOHANG)
    return (done, status) if done else None


def test_a_run_without_event_files_is_a_one_line_error(tmp_path):
    proc = wrap(tmp_path / "runs", sys.executable, "-c", "pass", cwd=tmp_path)
    proc.communicate(timeout=60)
    shown = otel_cli(tmp_path / "runs", "tensorboard", "latest")
    assert shown.returncode != 0
    assert shown.stderr.strip().startswith("otel-tracker: error: no TensorBoard event files in")
    assert len(shown.stderr.strip().splitlines()) == 1
