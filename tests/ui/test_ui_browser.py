"""The web view in a real headless Chromium (Debian's, driven by Playwright): pages
that change by themselves while runs change on disk, hostile names shown as text,
charts that hold the samples, the comparison of two runs."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import pytest

from otel_tracker import track_run
from tests.helpers import wait_for
from tests.ui.driven import DrivenRun

pytestmark = pytest.mark.slow

WAIT_MS = 30_000  # generous for a loaded machine: what is measured is in bench_ui.py


def _row_text(page: Any, run_id: str) -> str:
    return page.locator(f'tr[data-run="{run_id}"]').inner_text(timeout=WAIT_MS)


def test_the_runs_page_follows_a_run_it_never_reloads(
    root: Path, tmp_path: Path, ui_server: Any, page: Any
) -> None:
    server = ui_server()
    page.goto(server.url)
    page.wait_for_selector("#connection.live", timeout=WAIT_MS)
    page.evaluate("window.notReloaded = true")
    driven = DrivenRun(root, tmp_path / "gate", name="live-one")
    try:
        run_id = wait_for(lambda: driven.run_id, what="the run to start")
        page.wait_for_selector(f'tr[data-run="{run_id}"]', timeout=WAIT_MS)
        assert "running" in _row_text(page, run_id)
        page.wait_for_function(
            'id => (document.querySelector(`tr[data-run="${id}"]`) || {}).innerText'
            "?.includes('Step 1/2 – Prepare data')",
            arg=run_id,
            timeout=WAIT_MS,
        )
        driven.go(1)
        wait_for(lambda: (driven.gate / "halfway").exists(), what="halfway")
        page.wait_for_function(
            'id => { const t = document.querySelector(`tr[data-run="${id}"]`).innerText;'
            " return t.includes('Step 2/2 – Train model') && t.includes('5/10'); }",
            arg=run_id,
            timeout=WAIT_MS,
        )
        bar = page.locator(f'tr[data-run="{run_id}"] .bar > span').get_attribute("style")
        assert "width: 50%" in (bar or ""), bar
        driven.proc.send_signal(signal.SIGKILL)
        driven.proc.communicate(timeout=30)
        page.wait_for_function(
            "id => document.querySelector(`tr[data-run=\"${id}\"] .status`).innerText === 'aborted'",
            arg=run_id,
            timeout=WAIT_MS,
        )
        assert page.evaluate("window.notReloaded") is True
    finally:
        driven.proc.kill()
        driven.proc.communicate(timeout=30)
    assert page.errors == []  # type: ignore[attr-defined]


HOSTILE = "<img src=x onerror=alert(1)>"


def test_hostile_names_are_text_and_run_nothing(root: Path, ui_server: Any, page: Any) -> None:
    with (
        track_run(
            HOSTILE,
            root=root,
            steps=["<script>alert(2)</script>"],
            scenario="<b>bold</b>",
            params={"note": "<iframe src=javascript:alert(3)>"},
            progress="off",
            resources=False,
        ) as run,
        pytest.raises(ValueError),
        run.step("<script>alert(2)</script>"),
    ):
        raise ValueError("<svg onload=alert(4)>")
    broken = root / "20261201T000000.000Z-broken-abcdef"  # a damaged run beside it
    broken.mkdir()
    (broken / "manifest.json").write_text('{"run_id": "<script>alert(5)</script>"')
    server = ui_server()
    page.goto(server.url)
    problem = page.locator(".problem").first.inner_text(timeout=WAIT_MS)
    assert "broken" in problem and "manifest.json" in problem, problem
    cell = page.locator(f'tr[data-run="{run.run_id}"] td.name')
    assert cell.inner_text(timeout=WAIT_MS) == HOSTILE
    page.click(f'tr[data-run="{run.run_id}"] a')
    page.wait_for_selector("#timeline", timeout=WAIT_MS)
    text = page.inner_text("main")
    assert HOSTILE in text and "<script>alert(2)</script>" in text
    assert "<svg onload=alert(4)>" in text and "<iframe src=javascript:alert(3)>" in text
    assert page.locator("main img, main iframe, main svg, main script, main b").count() == 0
    assert page.errors == []  # type: ignore[attr-defined]  # no dialog opened, no error


def test_the_run_page_draws_its_timeline_charts_and_logs_live(
    root: Path, tmp_path: Path, ui_server: Any, page: Any
) -> None:
    server = ui_server()
    driven = DrivenRun(root, tmp_path / "gate", name="wrapped", wrapped=True)
    try:
        run_id = wait_for(lambda: driven.run_id, what="the run to start")
        page.goto(server.url + "run/" + run_id[:18])  # a unique prefix, as the CLI takes
        page.wait_for_selector("#chart-cpu", timeout=WAIT_MS)
        drawn = page.evaluate(
            "() => window.otelTracker.charts.cpu.data[1].filter(v => v !== null).length"
        )
        before = page.evaluate("() => window.otelTracker.charts.cpu.data[0].length")
        driven.go(1)
        wait_for(lambda: (driven.gate / "halfway").exists(), what="halfway")
        # samples arrive and are appended to the chart; the log follows the script
        page.wait_for_function(
            "n => window.otelTracker.charts.cpu.data[0].length > n + 2", arg=before, timeout=WAIT_MS
        )
        page.wait_for_function(
            "() => document.querySelector('#log-stdout').textContent.includes('batch 4')",
            timeout=WAIT_MS,
        )
        # the script's own steps nest under the command's step in the timeline
        page.wait_for_selector('.tl-row[data-step="Train model"]', timeout=WAIT_MS)
        steps = page.eval_on_selector_all(".tl-row", "rows => rows.map(r => r.dataset.step)")
        assert steps[1:] == ["Prepare data", "Train model"], steps
        assert drawn >= 1
        driven.go(2)
        driven.proc.communicate(timeout=60)
        page.wait_for_function(
            "() => document.querySelector('h1 .status').innerText === 'completed'",
            timeout=WAIT_MS,
        )
        bars = page.eval_on_selector_all(
            ".tl-bar", "bars => bars.map(b => [b.className, b.style.width])"
        )
        assert len(bars) == 3 and all(cls.endswith("completed") for cls, _ in bars), bars
    finally:
        driven.proc.kill()
        driven.proc.communicate(timeout=30)
    assert page.errors == []  # type: ignore[attr-defined]


def test_the_compare_page_shows_both_runs_side_by_side(
    root: Path, ui_server: Any, page: Any
) -> None:
    ids = []
    for lr in (0.1, 0.001):
        with (
            track_run(
                "sweep",
                root=root,
                steps=["fit"],
                params={"lr": lr},
                progress="off",
                sample_interval=0.1,
            ) as run,
            run.step("fit") as step,
        ):
            for i in range(5):
                step.log({"loss": lr + 1 / (i + 1)})
                time.sleep(0.1)  # a few resource samples to draw
        ids.append(run.run_id)
    server = ui_server()
    page.goto(server.url)
    for run_id in ids:
        page.check(f'tr[data-run="{run_id}"] input.pick', timeout=WAIT_MS)
    page.click("text=Compare selected")
    page.wait_for_selector("#compare", timeout=WAIT_MS)
    head = page.inner_text("#compare thead")
    assert all(run_id in head for run_id in ids)
    rows = page.inner_text("#compare tbody")
    assert "params.lr" in rows and "0.1" in rows and "0.001" in rows and "loss" in rows
    assert page.locator("#step-durations .dur-bar").count() == 2
    points = page.evaluate(
        "() => Object.values(window.otelTracker.charts).map("
        "c => c.data.slice(1).map(s => s.filter(v => v !== null).length))"
    )
    assert points and all(n >= 1 for chart in points for n in chart), points
    assert page.errors == []  # type: ignore[attr-defined]


def test_a_compacted_run_charts_its_whole_length_and_pruned_artifacts_say_so(
    root: Path, tmp_path: Path, ui_server: Any, page: Any
) -> None:
    ids = []
    for i in range(2):
        checkpoint = tmp_path / f"model{i}.ckpt"
        checkpoint.write_bytes(b"w" * 1000)
        with track_run(
            "long",
            root=root,
            progress="off",
            sample_interval=0.05,
            telemetry_window=1.0,
            telemetry_rollup=1.0,
            pack_telemetry=False,
        ) as run:
            run.add_artifact(checkpoint, "checkpoint")
            # what `run -- CMD` reads from a TensorBoard directory the command wrote
            run.import_series(
                {"epoch_loss": [(0, 0.5, None), (1, 0.25, None)]}, source="tensorboard:logs/train"
            )
            with run.step("train"):
                time.sleep(3.5)  # 3.5 s of samples: 1 s stays raw, the rest is rolled up
        ids.append(run.run_id)
    from tests.helpers import otel_cli

    pruned = otel_cli(root, "prune", "--artifacts", "--keep-last", "1", "--yes")
    assert "removed 1 artifacts (1.0 kB) of 1 runs" in pruned.stdout, pruned.stdout + pruned.stderr
    assert not (tmp_path / "model0.ckpt").exists() and (tmp_path / "model1.ckpt").exists()
    packed = otel_cli(root, "compact", ids[0], "--window", "1s", "--rollup", "1s", "--yes")
    assert packed.returncode == 0, packed.stderr
    assert (root / ids[0] / "telemetry.jsonl.gz").exists()
    server = ui_server()
    page.goto(server.url + "run/" + ids[0])
    page.wait_for_selector("#chart-cpu", timeout=WAIT_MS)
    span = page.evaluate(
        "() => { const t = window.otelTracker.charts.cpu.data[0]; return t[t.length - 1] - t[0]; }"
    )
    assert span >= 3.0, span  # the roll-ups before the 1 s window are charted too
    page.wait_for_selector("#artifacts", timeout=WAIT_MS)
    assert "checkpoint (pruned " in page.inner_text("#artifacts")
    row = page.inner_text("#metrics tbody tr")
    assert row.split("\t")[0] == "epoch_loss" and row.endswith("TensorBoard logs/train"), row
    assert page.errors == []  # type: ignore[attr-defined]
