"""The web view's pieces without a server: thinning, the incremental telemetry
reader, which files may be served, the runs filter and the access rule."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from otel_tracker.ui.downsample import min_max_buckets
from otel_tracker.ui.files import inside_run, read_from, safe_file
from otel_tracker.ui.server import UiError, check_access
from otel_tracker.ui.telemetry import TelemetryFeed
from otel_tracker.ui.views import RunQuery

RUN = "20261203T051659.223Z-train-b2a4e7"


def test_thinning_keeps_every_spike_and_bounds_the_points() -> None:
    times = [float(t) for t in range(17_280)]  # a day at 5 s
    values = [0.5] * len(times)
    values[12_345] = 9.0  # one sample spikes
    values[777] = -3.0  # one dips
    gappy = [None if t % 2 else 1.0 for t in range(len(times))]
    out_t, out = min_max_buckets(times, {"cpu": values, "gappy": gappy}, 600)
    assert len(out_t) <= 1_200 and all(len(v) == len(out_t) for v in out.values())
    assert max(out["cpu"]) == 9.0 and min(out["cpu"]) == -3.0  # an average would hide both
    assert out_t == sorted(out_t) and out_t[0] == 0.0 and out_t[-1] == 17_279.0
    assert set(out["gappy"]) == {1.0}
    small_t, small = min_max_buckets(times[:100], {"cpu": values[:100]}, 600)
    assert small_t == times[:100] and small["cpu"] == values[:100]  # nothing to thin
    with pytest.raises(ValueError):
        min_max_buckets(times, {}, 0)


def _sample(t: float, **points: float) -> bytes:
    iso = f"2026-12-03T05:00:{t:06.3f}Z"
    return json.dumps({"t": iso, "step": "fit", "points": points}).encode() + b"\n"


def test_the_telemetry_feed_reads_only_what_was_appended(tmp_path: Path) -> None:
    path = tmp_path / "telemetry.jsonl"
    path.write_bytes(
        _sample(1, **{"process.cpu.utilization": 0.5, "otel_tracker.step.items": 0})
        + _sample(2, **{"process.cpu.utilization": 0.7, "otel_tracker.step.items": 10})
    )
    feed = TelemetryFeed(path)
    first = feed.read_new()
    assert [s.values.get("process.cpu.utilization") for s in first] == [0.5, 0.7]
    assert first[1].values["throughput"] == 10.0  # 10 items in a second of one step
    offset = feed.offset
    with path.open("ab") as file:  # a sample being written: half a line
        file.write(_sample(3, **{"process.cpu.utilization": 0.9})[:20])
    assert feed.read_new() == [] and feed.offset == offset
    with path.open("ab") as file:
        file.write(_sample(3, **{"process.cpu.utilization": 0.9})[20:] + b"not json\n")
    later = feed.read_new()
    assert [s.values["process.cpu.utilization"] for s in later] == [0.9]
    assert feed.skipped == 1 and feed.offset == path.stat().st_size
    charts = feed.charts(600)
    assert charts["samples"] == 3 and charts["charts"]["cpu"]["series"][0]["values"] == [
        0.5,
        0.7,
        0.9,
    ]
    assert charts["charts"]["throughput"]["series"][0]["values"] == [None, 10.0, None]


def test_the_feed_of_a_missing_or_linked_file_is_empty(tmp_path: Path) -> None:
    assert TelemetryFeed(tmp_path / "none.jsonl").read_new() == []
    secret = tmp_path / "secret"
    secret.write_bytes(_sample(1, **{"process.cpu.utilization": 0.5}))
    (tmp_path / "telemetry.jsonl").symlink_to(secret)
    assert TelemetryFeed(tmp_path / "telemetry.jsonl").read_new() == []


@pytest.fixture
def run_root(tmp_path: Path) -> Path:
    root = tmp_path / "runs"
    run = root / RUN
    (run / "logs").mkdir(parents=True)
    (run / "logs" / "stdout.log").write_text("hello\n")
    (run / "manifest.json").write_text("{}")
    (tmp_path / "outside.txt").write_text("secret")
    (run / "escape").symlink_to(tmp_path / "outside.txt")
    (run / "linked-dir").symlink_to(tmp_path)
    (run / "inner-link").symlink_to(run / "manifest.json")
    os.mkfifo(run / "fifo")
    return root


@pytest.mark.parametrize(
    "relative",
    [
        "../outside.txt",
        "../../etc/passwd",
        "/etc/passwd",
        "logs/../../outside.txt",
        "escape",
        "linked-dir/outside.txt",
        "inner-link",  # even a link that stays inside: links are not followed
        "fifo",
        "logs",
        "",
        "nul\x00l",
    ],
)
def test_no_path_leaves_the_run_directory(run_root: Path, relative: str) -> None:
    assert safe_file(run_root, RUN, relative) is None


def test_plain_files_inside_are_served(run_root: Path) -> None:
    assert safe_file(run_root, RUN, "logs/stdout.log") == run_root / RUN / "logs" / "stdout.log"
    assert safe_file(run_root, RUN, "manifest.json") is not None
    for bad_run in ("..", "x", f"{RUN}/..", "baselines"):
        assert safe_file(run_root, bad_run, "manifest.json") is None


def test_only_artifacts_inside_the_run_get_a_link(tmp_path: Path) -> None:
    run = tmp_path / RUN
    assert inside_run(run, str(run / "ckpt" / "model.pt")) == "ckpt/model.pt"
    assert inside_run(run, "logs/stdout.log") == "logs/stdout.log"
    assert inside_run(run, str(tmp_path / "elsewhere.pt")) is None
    assert inside_run(run, str(run / ".." / "x")) is None


def test_logs_are_read_whole_lines_from_an_offset(tmp_path: Path) -> None:
    path = tmp_path / "out.log"
    path.write_bytes(b"one\ntwo\nthr")
    text, offset = read_from(path, None)
    assert (text, offset) == ("one\ntwo\n", 8)
    with path.open("ab") as file:
        file.write(b"ee\n")
    assert read_from(path, offset) == ("three\n", 14)
    assert read_from(path, 10_000) == ("one\ntwo\nthree\n", 14)  # truncated: again
    assert read_from(path, None, until=8) == ("one\ntwo\n", 8)


def test_the_runs_filter_matches_rows_like_list() -> None:
    row = {"run_id": RUN, "name": "train", "scenario": "nightly", "status": "running"}
    assert RunQuery.from_params({"status": "running", "name": "tr*", "q": "NIGHT"}).matches(row)
    assert not RunQuery.from_params({"status": "failed"}).matches(row)
    assert not RunQuery.from_params({"scenario": "smoke"}).matches(row)
    assert RunQuery.from_params({"since": "not a time", "status": "bogus"}) == RunQuery()


def test_off_loopback_a_token_is_required() -> None:
    assert check_access("127.0.0.1", None) is None
    assert check_access("::1", None) is None and check_access("localhost", None) is None
    with pytest.raises(UiError, match="not a loopback address"):
        check_access("0.0.0.0", None)
    assert check_access("0.0.0.0", "s3cret") == "s3cret"
    generated = check_access("0.0.0.0", "generate")
    assert generated and len(generated) >= 24
