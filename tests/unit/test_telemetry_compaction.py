"""Compact telemetry: the writer's window and roll-ups, packing, and every reader on
both forms agreeing with the raw samples (min/max exact, means within 1e-6)."""

from __future__ import annotations

import gzip
import itertools
import json
import math
import random
from pathlib import Path

import pytest

from otel_tracker.contract.telemetry_form import (
    PACKED_NAME,
    ROLLUP_NAME,
    TELEMETRY_NAME,
    is_rollup,
    iso_seconds,
    read_records,
    record_stats,
)
from otel_tracker.contract.telemetry_pack import pack_telemetry, roll_up
from otel_tracker.exporters.telemetry import TelemetryFile
from otel_tracker.exporters.telemetry_window import TelemetryWindow
from otel_tracker.history.telemetry_tail import aggregate, rebuild_step_resources
from otel_tracker.ui.telemetry import TelemetryFeed

START = 1_780_000_020.0  # a whole minute
KEYS = ("process.cpu.utilization", "process.memory.usage", "hw.gpu.utilization{hw.id=0}")


def samples(hours: float, interval: float = 5.0, seed: int = 1):
    """(t, record) of a synthetic run: three steps, noisy series, one that is
    constant and one that goes missing now and then."""
    rng = random.Random(seed)
    n = int(hours * 3600 / interval)
    for i in range(n):
        t = START + i * interval
        step = "load" if i < n // 10 else "train" if i < n * 9 // 10 else "eval"
        points = {
            KEYS[0]: round(rng.random() * 2, 6),
            KEYS[1]: float(rng.randrange(10**8, 4 * 10**9)),
            "system.cpu.count": 16,
            "otel_tracker.step.items": i,
        }
        if i % 7:
            points[KEYS[2]] = round(rng.gauss(0.8, 0.1), 6)
        yield t, {"t": iso_seconds(t), "run_id": "r", "step": step, "points": points}


def write_live(run_dir: Path, hours: float, window: float, rollup: float = 60.0):
    run_dir.mkdir(parents=True, exist_ok=True)
    writer = TelemetryWindow(
        TelemetryFile(run_dir / TELEMETRY_NAME), run_id="r", window_s=window, interval_s=rollup
    )
    raw = list(samples(hours))
    for t, record in raw:
        assert writer.append(record, t)
    writer.close()
    return raw, writer


def exact(raw, step=None):
    """The figures of every series straight from the raw samples."""
    values: dict[str, list[float]] = {}
    for _t, record in raw:
        if step is None or record["step"] == step:
            for key, value in record["points"].items():
                values.setdefault(key, []).append(value)
    return values


def assert_agrees(records, raw, step=None):
    parts: dict[str, list] = {}
    for _t, record in records:
        if step is None or record.get("step") == step:
            for key, stats in record_stats(record).items():
                parts.setdefault(key, []).append(stats)
    truth = exact(raw, step)
    assert set(parts) == set(truth)
    for key, values in truth.items():
        got = aggregate(parts[key])
        assert got["count"] == len(values), key
        assert got["min"] == round(min(values), 6) and got["max"] == round(max(values), 6), key
        # the means are rounded to 6 decimals (each roll-up's, then the aggregate's)
        assert math.isclose(got["mean"], sum(values) / len(values), rel_tol=1e-6, abs_tol=1.5e-6)


def test_the_writer_keeps_a_window_raw_and_rolls_up_the_rest(tmp_path):
    raw, writer = write_live(tmp_path, hours=3, window=1800)
    assert writer.dropped >= 1
    lines = (tmp_path / TELEMETRY_NAME).read_bytes().splitlines()
    first = json.loads(lines[0])["t"]
    # what stays raw is the window plus at most a quarter of it (the drop's slack)
    kept_s = (len(lines) - 1) * 5.0
    assert 1800 <= kept_s <= 1800 * 1.25 + 60, kept_s
    rollups = [json.loads(x) for x in (tmp_path / ROLLUP_NAME).read_bytes().splitlines()]
    assert rollups and all(r["rollup"] == 60.0 for r in rollups)
    assert all(r["t_last"] < first or r["t"] >= first[:16] for r in rollups)
    # a constant series is one number, one that missed samples carries its count
    assert rollups[0]["points"]["system.cpu.count"] == 16
    assert len(rollups[0]["points"][KEYS[2]]) == 5
    records = read_records(tmp_path)
    assert [t for t, _ in records] == sorted(t for t, _ in records)
    assert_agrees(records, raw)
    for step in ("load", "train", "eval"):
        assert_agrees(records, raw, step)


def test_a_run_shorter_than_its_window_writes_no_rollups(tmp_path):
    raw, _ = write_live(tmp_path, hours=0.5, window=3600)
    assert not (tmp_path / ROLLUP_NAME).exists()
    assert len(read_records(tmp_path)) == len(raw)


def test_a_failed_rollup_write_keeps_every_raw_sample(tmp_path):
    (tmp_path / ROLLUP_NAME).mkdir()  # the roll-up file cannot be written
    raw, writer = write_live(tmp_path, hours=2, window=600)
    assert writer.dropped == 0
    records = read_records(tmp_path)
    assert len(records) == len(raw) and not any(is_rollup(r) for _, r in records)


def test_packing_gzips_and_the_readers_agree(tmp_path):
    raw, _ = write_live(tmp_path, hours=3, window=1800)
    live = read_records(tmp_path)
    packed = pack_telemetry(tmp_path, window_s=1800, interval_s=60)
    assert packed is not None and packed.bytes_after < packed.bytes_before / 3
    assert not (tmp_path / TELEMETRY_NAME).exists() and not (tmp_path / ROLLUP_NAME).exists()
    with gzip.open(tmp_path / PACKED_NAME) as file:
        lines = file.read().splitlines()
    # the writer's slack (up to a quarter window) is rolled up too: only the window stays raw
    assert len(lines) == len(read_records(tmp_path)) < len(live)
    assert sum(not is_rollup(json.loads(x)) for x in lines) <= 1800 / 5 + 12
    assert_agrees(read_records(tmp_path), raw)
    assert pack_telemetry(tmp_path, window_s=1800, interval_s=60) is None  # packed already


def test_packing_a_run_kept_all_raw_rolls_it_up(tmp_path):
    raw, _ = write_live(tmp_path, hours=2, window=0)
    assert not (tmp_path / ROLLUP_NAME).exists()
    packed = pack_telemetry(tmp_path, window_s=600, interval_s=60)
    assert packed is not None and packed.rolled_up > 0
    records = read_records(tmp_path)
    assert sum(not is_rollup(r) for _, r in records) == packed.samples <= 600 / 5 + 12
    assert_agrees(records, raw)


def test_a_pack_killed_at_any_step_loses_nothing(tmp_path):
    raw, _ = write_live(tmp_path, hours=2, window=600)
    live = read_records(tmp_path)
    saved = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    # killed before the rename: only its temporary file, which the next pack clears
    (tmp_path / f".{PACKED_NAME}.999.tmp").write_bytes(b"half")
    assert read_records(tmp_path) == live
    assert pack_telemetry(tmp_path, window_s=600, interval_s=60) is not None
    assert not list(tmp_path.glob(".*.tmp"))
    packed = read_records(tmp_path)
    assert_agrees(packed, raw)
    # killed after the rename, between the two unlinks (either one left): the packed
    # file is whole and is what every reader reads; packing again changes nothing
    for left in (TELEMETRY_NAME, ROLLUP_NAME):
        (tmp_path / left).write_bytes(saved[left])
        assert read_records(tmp_path) == packed
        assert read_records(tmp_path, tail_bytes=1 << 30) == packed
        assert pack_telemetry(tmp_path, window_s=600, interval_s=60) is not None
        assert read_records(tmp_path) == packed and not (tmp_path / left).exists()


def test_a_sample_written_after_the_pack_is_read_after_it(tmp_path):
    raw, _ = write_live(tmp_path, hours=1, window=600)
    pack_telemetry(tmp_path, window_s=600, interval_s=60)
    late_t = raw[-1][0] + 5
    late = {"t": iso_seconds(late_t), "run_id": "r", "step": "eval", "points": {KEYS[0]: 9.0}}
    (tmp_path / TELEMETRY_NAME).write_text(json.dumps(late) + "\n")
    records = read_records(tmp_path)
    assert records[-1] == (late_t, late) and len(records) == len(set(t for t, _ in records))
    assert read_records(tmp_path, tail_bytes=1 << 30)[-1] == (late_t, late)


def test_a_torn_packed_file_yields_what_came_before_the_damage(tmp_path):
    write_live(tmp_path, hours=1, window=0)
    pack_telemetry(tmp_path, window_s=0, interval_s=60)
    data = (tmp_path / PACKED_NAME).read_bytes()
    (tmp_path / PACKED_NAME).write_bytes(data[: len(data) // 2])
    records = read_records(tmp_path)
    assert 0 < len(records) < 720


def test_an_aborted_runs_step_figures_are_rebuilt_from_rollups(tmp_path):
    raw, _ = write_live(tmp_path, hours=3, window=1800)
    train_start = next(t for t, r in raw if r["step"] == "train")
    doc = {
        "telemetry": {"run": {k: {} for k in KEYS}},
        "steps": [{"name": "train", "status": "running", "started_at": iso_seconds(train_start)}],
    }
    assert rebuild_step_resources(doc, tmp_path) == ["train"]
    figures = doc["steps"][0]["resources"]
    truth = exact(raw, "train")
    for key in KEYS:
        assert figures[key]["count"] == len(truth[key])
        assert figures[key]["min"] == round(min(truth[key]), 6)
        assert figures[key]["max"] == round(max(truth[key]), 6)
        mean = sum(truth[key]) / len(truth[key])
        assert math.isclose(figures[key]["mean"], mean, rel_tol=1e-6, abs_tol=1.5e-6)
        ordered = sorted(truth[key])
        p95 = ordered[math.ceil(0.95 * len(ordered)) - 1]
        assert figures[key]["p95"] >= p95  # an upper bound where roll-ups are involved


def test_roll_up_keeps_step_boundaries():
    raw = list(samples(0.5))
    counter = [0]
    lines = list(roll_up(raw, 60, 60, raw[-1][0], counter))
    assert counter[0] > 0
    counted: dict[str, int] = {}
    for line in lines:
        counted[line["step"]] = counted.get(line["step"], 0) + (line.get("n") or 1)
    truth: dict[str, int] = {}
    for _t, record in raw:
        truth[record["step"]] = truth.get(record["step"], 0) + 1
    assert counted == truth  # buckets never mix steps: each step's samples add up


@pytest.mark.parametrize("packed", [False, True])
def test_the_web_views_feed_reads_both_forms(tmp_path, packed):
    raw, _ = write_live(tmp_path, hours=3, window=1800)
    if packed:
        pack_telemetry(tmp_path, window_s=1800, interval_s=60)
    feed = TelemetryFeed(tmp_path / TELEMETRY_NAME)
    feed.catch_up()
    assert feed.times == sorted(feed.times)
    assert feed.times[0] == START and feed.times[-1] == raw[-1][0]
    cpu = [v for v in feed.columns[KEYS[0]] if v is not None]
    truth = exact(raw)[KEYS[0]]
    assert min(cpu) == min(truth) and max(cpu) == max(truth)
    assert any(v is not None for v in feed.columns["throughput"])


def test_the_feed_goes_on_after_the_writer_drops_old_lines(tmp_path):
    writer = TelemetryWindow(
        TelemetryFile(tmp_path / TELEMETRY_NAME), run_id="r", window_s=600, interval_s=60
    )
    feed = TelemetryFeed(tmp_path / TELEMETRY_NAME)
    raw = list(samples(2))
    seen = 0
    for i, (t, record) in enumerate(raw):
        writer.append(record, t)
        if i % 50 == 0:
            seen += len(feed.read_new())
    writer.close()
    seen += len(feed.read_new())
    assert writer.dropped >= 2
    assert seen == len(raw) and feed.times == [t for t, _ in raw]


def test_the_feed_fills_what_drops_took_while_it_was_not_reading(tmp_path):
    writer = TelemetryWindow(
        TelemetryFile(tmp_path / TELEMETRY_NAME), run_id="r", window_s=600, interval_s=60
    )
    feed = TelemetryFeed(tmp_path / TELEMETRY_NAME)
    raw = list(samples(1.2))
    for i, (t, record) in enumerate(raw):
        writer.append(record, t)
        if i == 200:  # the page reads once, then nobody reads for an hour of drops
            feed.read_new()
    writer.close()
    feed.read_new()
    assert writer.dropped >= 2
    gaps = [b - a for a, b in itertools.pairwise(feed.times)]
    assert max(gaps) <= 60, max(gaps)  # a roll-up at least every interval, no hole
    assert feed.times[-1] == raw[-1][0] and feed.times == sorted(feed.times)


def test_samples_a_hair_before_a_boundary_are_counted_once(tmp_path):
    from otel_tracker.clock import iso_utc

    writer = TelemetryWindow(
        TelemetryFile(tmp_path / TELEMETRY_NAME), run_id="r", window_s=120, interval_s=60
    )
    raw = []
    for i in range(400):
        wall = START + i * 5.0 - (3e-7 if i % 12 == 0 else 0.0)  # rounds up to the boundary
        record = {"t": iso_utc(int(wall * 1e9)), "run_id": "r", "step": "s", "points": {"x": i}}
        writer.append(record, wall)
        raw.append((wall, record))
    writer.close()
    assert writer.dropped >= 2
    assert_agrees(read_records(tmp_path), raw)
    pack_telemetry(tmp_path, window_s=120, interval_s=60)
    assert_agrees(read_records(tmp_path), raw)
