"""The web view's pieces without a server: thinning, the incremental telemetry
reader, which files may be served, the runs filter and the access rule."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from otel_tracker.ui.downsample import min_max_buckets
from otel_tracker.ui.files import inside_run, open_file, read_from_file
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


def _served(root: Path, run_id: str, relative: str) -> bool:
    fd = open_file(root, run_id, relative)
    if fd is not None:
        os.close(fd)
    return fd is not None


def read_from(path: Path, offset: int | None, until: int | None = None) -> tuple[str, int]:
    with path.open("rb") as file:
        return read_from_file(file, offset, 64 * 1024, until)


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
    assert not _served(run_root, RUN, relative)


def test_plain_files_inside_are_served(run_root: Path) -> None:
    assert _served(run_root, RUN, "logs/stdout.log") and _served(run_root, RUN, "manifest.json")
    for bad_run in ("..", "x", f"{RUN}/..", "baselines"):
        assert not _served(run_root, bad_run, "manifest.json")


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


def test_a_run_seen_before_its_manifest_is_picked_up_when_it_writes_one(
    root: Path, template_manifest: dict
) -> None:
    """The root's watcher sees the run's directory appear, not the manifest written
    inside it later: the hub reads such a directory again until it has a row."""
    from otel_tracker.config import ReaderConfig
    from otel_tracker.contract.atomic import write_json_atomic
    from otel_tracker.contract.liveness import RunLock
    from otel_tracker.history.store import RunStore
    from otel_tracker.ui.hub import Hub

    run = root / RUN
    run.mkdir(parents=True)
    lock = RunLock(run / ".lock")
    assert lock.acquire(f"{os.getpid()}\n")  # a live process, starting
    try:
        hub = Hub(RunStore(config=ReaderConfig(root=root)))
        assert hub.refresh(set(), True, set()) == []  # starting: nothing to show yet
        doc = dict(template_manifest, run_id=RUN, status="running", ended_at=None)
        write_json_atomic(run / "manifest.json", doc)
        events = hub.refresh(set(), False, set())  # no event named it: found anyway
        assert [(kind, run_id) for kind, run_id, _ in events] == [("row", RUN)]
        assert events[0][2]["status"] == "running"
        hub.close()
    finally:
        lock.release()


def _live_run(root: Path, template: dict, run_id: str, **fields: Any) -> Any:
    """A running run (its lock held by this process) with ``fields`` in its manifest."""
    from otel_tracker.contract.atomic import write_json_atomic
    from otel_tracker.contract.liveness import RunLock

    run = root / run_id
    run.mkdir(parents=True)
    lock = RunLock(run / ".lock")
    assert lock.acquire(f"{os.getpid()}\n")
    doc = dict(template, run_id=run_id, status="running", ended_at=None, **fields)
    write_json_atomic(run / "manifest.json", doc)
    return lock


def _hub(root: Path) -> Any:
    from otel_tracker.config import ReaderConfig
    from otel_tracker.history.store import RunStore
    from otel_tracker.ui.hub import Hub

    return Hub(RunStore(config=ReaderConfig(root=root)))


def test_one_run_with_a_mistyped_field_never_breaks_the_others(
    root: Path, template_manifest: dict
) -> None:
    import copy

    from otel_tracker.ui.views import RunQuery

    steps = copy.deepcopy(template_manifest["steps"])
    steps[0].update(status="running", progress={"completed": "many", "total": 4})
    bad = _live_run(root, template_manifest, RUN, steps=steps)
    good_id = "20261203T051700.000Z-good-abcdef"
    good = _live_run(root, template_manifest, good_id)
    try:
        hub = _hub(root)
        page = hub.query(RunQuery(), 0, 50)
        assert [r["run_id"] for r in page["runs"]] == [good_id]
        assert any(RUN in p and "cannot be shown" in p for p in page["problems"]), page
        hub.refresh({RUN, good_id}, True, set())  # re-read, and nothing raised
        assert [r["run_id"] for r in hub.query(RunQuery(), 0, 50)["runs"]] == [good_id]
        hub.close()
    finally:
        bad.release()
        good.release()


def test_logs_are_followed_once_per_page_from_where_each_came_in(
    root: Path, template_manifest: dict
) -> None:
    """Two pages on one run get every new line once; a log that appears later (a
    pipeline file's next step) is followed from its first line; a line longer than a
    read is passed on; when the last page leaves, nothing is remembered."""
    lock = _live_run(root, template_manifest, RUN)
    logs = root / RUN / "logs"
    logs.mkdir()
    (logs / "stdout.log").write_text("one\ntwo\n")
    try:
        hub = _hub(root)
        _, first = hub.subscribe(RUN, 100, False, True)
        assert first == {"stdout": {"text": "one\ntwo\n", "offset": 8}}
        with (logs / "stdout.log").open("a") as out:
            out.write("three\n")
        (logs / "01-train.stderr.log").write_text("warning\n")
        _, second = hub.subscribe(RUN, 100, False, True)  # a second page, before the refresh
        assert second == {"stdout": {"text": "one\ntwo\n", "offset": 8}}  # as the first has
        events = hub.refresh(set(), False, {RUN})
        lines = sorted((e[2]["name"], e[2]["text"]) for e in events if e[0] == "log")
        assert lines == [("01-train.stderr", "warning\n"), ("stdout", "three\n")]
        assert [e for e in hub.refresh(set(), False, {RUN}) if e[0] == "log"] == []
        with (logs / "stdout.log").open("a") as out:
            out.write("\r" + "x" * 300_000 + "\nafter\n")  # tqdm redrawing one line
        texts = []
        for _ in range(5):
            texts += [e[2]["text"] for e in hub.refresh(set(), False, {RUN}) if e[0] == "log"]
        assert "".join(texts).endswith("after\n") and len("".join(texts)) == 300_008
        hub.refresh(set(), False, set())  # every page left
        assert hub._logs == {}
        hub.close()
    finally:
        lock.release()


def test_a_huge_telemetry_file_is_read_in_pieces_into_bounded_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from otel_tracker.ui import telemetry

    monkeypatch.setattr(telemetry, "READ_BYTES", 64 * 1024)
    monkeypatch.setattr(telemetry, "MAX_KEPT", 2_000)
    path = tmp_path / "telemetry.jsonl"
    with path.open("wb") as file:
        for i in range(12_000):
            second = i % 60
            file.write(_sample(second, **{"process.cpu.utilization": (i % 7) / 10}))
    feed = TelemetryFeed(path)
    first = feed.read_new()
    assert 0 < len(first) < 12_000 and feed.behind  # one piece, and it says there is more
    feed.catch_up(budget_s=60)
    assert not feed.behind and feed.samples == 12_000 and feed.offset == path.stat().st_size
    assert len(feed.times) <= 2_000  # thinned, not kept whole
    cpu = feed.charts(100)["charts"]["cpu"]["series"][0]["values"]
    assert max(v for v in cpu if v is not None) == 0.6  # the envelope keeps the extremes


def test_series_beyond_the_cap_are_neither_charted_nor_sent(tmp_path: Path) -> None:
    from otel_tracker.ui.telemetry import MAX_SERIES

    path = tmp_path / "telemetry.jsonl"
    gpus = {f"hw.gpu.utilization{{otel_tracker.gpu.index={i}}}": 0.5 for i in range(70)}
    path.write_bytes(_sample(1, **gpus))
    (sample,) = TelemetryFeed(path).read_new()
    assert len(sample.values) == MAX_SERIES  # what the page gets is what it charts


def test_every_log_of_a_run_is_found() -> None:
    from otel_tracker.ui.files import log_names

    assert log_names(Path("/nonexistent"), RUN) == []
