"""``otel-tracker ui``'s server over real runs: its JSON, the files it refuses, the
guards of a local server, and the changes it pushes over a real WebSocket."""

from __future__ import annotations

import asyncio
import concurrent.futures
import http.client
import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest

from otel_tracker import track_run
from tests.helpers import child_env, make_run, wait_for
from tests.ui.driven import DrivenRun


def _get(url: str, path: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    """A raw request: the path goes out exactly as written (no client normalises it)."""
    host, port = url.split("//")[1].rstrip("/").rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.putrequest("GET", path, skip_host=True)
    conn.putheader("Host", headers.pop("Host", f"{host}:{port}"))
    for key, value in headers.items():
        conn.putheader(key, value)
    conn.endheaders()
    response = conn.getresponse()
    body = response.read()
    conn.close()
    return response.status, dict(response.headers), body


def _run(coroutine: Any) -> Any:
    """``asyncio.run`` on a thread of its own: Playwright's sync API (the browser
    tests, same session) keeps an event loop running on the main thread."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def _json(url: str, path: str) -> Any:
    status, _, body = _get(url, path)
    assert status == 200, body
    return json.loads(body)


def _tracked(root: Path, name: str, **options: Any) -> str:
    with track_run(name, root=root, steps=["a", "b"], progress="off", **options) as run:
        with run.step("a"):
            pass
        with run.step("b"):
            (Path(run.dir) / "report.html").write_text("<script>alert(1)</script>")
            run.add_artifact(Path(run.dir) / "report.html")
    return run.run_id


def test_the_api_lists_shows_and_serves_only_what_it_should(
    root: Path, ui_server: Any, template_manifest: dict[str, Any]
) -> None:
    first = _tracked(root, "alpha", params={"token": "hunter2-secret", "lr": 0.1})
    second = _tracked(root, "beta")
    for i in range(3):
        started = datetime(2026, 11, 1, 12, i, tzinfo=timezone.utc)
        make_run(root, template_manifest, name="old", status="failed", started=started)
    bad = root / "20261201T000000.000Z-broken-abcdef"
    bad.mkdir()
    (bad / "manifest.json").write_text("{not json")
    url = ui_server().url

    listed = _json(url, "/api/runs?limit=2")
    assert [r["run_id"] for r in listed["runs"]] == [second, first] and listed["more"]
    assert listed["total_runs"] == 6
    assert any("broken" in p for p in listed["problems"])  # shown, never a broken page
    failed = _json(url, "/api/runs?status=failed&limit=50")
    assert {r["name"] for r in failed["runs"]} == {"old"} and len(failed["runs"]) == 3
    assert [r["run_id"] for r in _json(url, "/api/runs?q=ALPH")["runs"]] == [first]
    assert _json(url, "/api/runs?offset=5&limit=2")["runs"] == []

    detail = _json(url, f"/api/runs/{first}")
    assert detail["status"] == "completed" and [s["name"] for s in detail["steps"]] == ["a", "b"]
    assert detail["params"]["token"] == "***" and "hunter2" not in json.dumps(detail)
    assert "files" not in detail and detail["analysis"]["recommendations"] is not None
    (artifact,) = [a for a in detail["artifacts"] if a["path"].endswith("report.html")]
    assert artifact["href"] == "report.html"
    status, headers, body = _get(url, f"/files/{first}/report.html")
    assert status == 200 and body == b"<script>alert(1)</script>"
    assert headers["Content-Type"].startswith("text/plain")  # never rendered as a page
    assert "sandbox" in headers["Content-Security-Policy"]
    charts = _json(url, f"/api/runs/{first}/telemetry?buckets=50")
    assert charts["samples"] >= 1 and len(charts["t"]) >= 1 and charts["offset"] > 0
    assert _get(url, "/api/runs/nope")[0] == 404

    outside = root.parent / "outside-run"  # a run directory elsewhere on the machine
    outside.mkdir()
    for name in ("manifest.json", "telemetry.jsonl"):
        (outside / name).write_bytes((root / first / name).read_bytes())
    elsewhere = quote(str(outside), safe="")
    for path in (
        f"/api/runs/{elsewhere}",
        f"/api/runs/{elsewhere}/telemetry",
        f"/api/runs/{elsewhere}/logs",
        "/api/runs/..%2Foutside-run/telemetry",
        "/api/runs/%20..",
        "/api/runs/%20.",
        f"/api/runs/{first}%0A",
        f"/api/compare?run={elsewhere}&run={first}",
        f"/files/{first}/../../outside",
        f"/files/{first}/..%2F..%2Foutside",
        f"/files/{first}/%2Fetc%2Fpasswd",
        f"/files/{first}/manifest.json%00",
        "/files/../etc/passwd",
        f"/files/{bad.name}/../{first}/manifest.json",
        "/static/../server.py",
        "/static/%2e%2e/server.py",
    ):
        assert _get(url, path)[0] in (404, 400), path


def test_a_local_server_refuses_other_hosts_origins_and_methods(root: Path, ui_server: Any) -> None:
    server = ui_server()
    url = server.url
    # a page of another site that resolved its name to 127.0.0.1 (DNS rebinding)
    assert _get(url, "/api/runs", Host=f"evil.example:{server.port}")[0] == 421
    status, headers, _ = _get(url, "/")
    assert status == 200 and "script-src 'self'" in headers["Content-Security-Policy"]
    assert "unsafe-inline" not in headers["Content-Security-Policy"]
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        conn.request(method, "/api/runs", body=b"{}")
        response = conn.getresponse()
        response.read()
        assert response.status == 405, method

    async def socket(origin: str) -> int:
        async with aiohttp.ClientSession() as session:
            try:
                async with session.ws_connect(url + "ws", headers={"Origin": origin}):
                    return 101
            except aiohttp.WSServerHandshakeError as exc:
                return exc.status

    assert _run(socket("http://evil.example")) == 403
    assert _run(socket("null")) == 403  # a sandboxed frame of any site
    assert _run(socket(f"http://127.0.0.1:{server.port}")) == 101


def test_a_token_guards_every_request_and_is_kept_in_a_cookie(root: Path, ui_server: Any) -> None:
    url = ui_server(token="s3cret-token").url
    assert _get(url, "/api/runs")[0] == 401
    assert _get(url, "/api/runs?token=wrong")[0] == 401
    status, headers, _ = _get(url, "/?token=s3cret-token")
    assert status == 200 and "HttpOnly" in headers["Set-Cookie"]
    assert "SameSite=Strict" in headers["Set-Cookie"]
    assert _get(url, "/api/runs", Cookie="otel_tracker_token=s3cret-token")[0] == 200


async def _messages(url: str, watch: dict[str, Any], until: Any, timeout: float = 60) -> list:
    """Messages pushed after ``watch`` until ``until(messages)`` holds."""
    seen: list[dict[str, Any]] = []
    async with aiohttp.ClientSession() as session, session.ws_connect(url + "ws") as ws:
        await ws.send_str(json.dumps(watch))
        deadline = time.monotonic() + timeout
        while not until(seen):
            left = deadline - time.monotonic()
            assert left > 0, f"timed out; got {[m.get('type') for m in seen]}"
            # bounded as a whole: receive(timeout=) starts again after each ping
            message = await asyncio.wait_for(ws.receive(), left)
            assert message.type == aiohttp.WSMsgType.TEXT, message
            seen.append(json.loads(message.data))
    return seen


@pytest.mark.slow
@pytest.mark.parametrize("poll", [False, True], ids=["inotify", "polling"])
def test_changes_are_pushed_as_they_happen(
    root: Path, tmp_path: Path, ui_server: Any, poll: bool
) -> None:
    """A run that starts, moves, and is SIGKILLed reaches a watching socket by itself:
    its rows (running, then its step, then aborted), its telemetry samples and no
    full state again."""
    server = ui_server(poll=poll)
    driven = DrivenRun(root, tmp_path / "gate")
    try:

        def rows(messages: list, status: str, step: str | None = None) -> bool:
            return any(
                m["type"] == "run"
                and m["row"]["status"] == status
                and (step is None or m["row"]["current_step"] == step)
                for m in messages
            )

        got = _run(_messages(server.url, {"watch": "runs"}, lambda ms: rows(ms, "running")))
        assert got[0]["type"] == "hello" and got[0]["watcher"] == ("polling" if poll else "inotify")
        run_id = wait_for(lambda: driven.run_id, what="the run's id")

        async def follow() -> list:
            async with (
                aiohttp.ClientSession() as session,
                session.ws_connect(server.url + "ws") as ws,
            ):
                await ws.send_str(json.dumps({"watch": "run", "run_id": run_id}))
                seen: list[dict[str, Any]] = []
                driven.go(1)
                deadline = time.monotonic() + 60
                while not (
                    rows(seen, "running", "Train model")
                    and any(m["type"] == "samples" for m in seen)
                ):
                    left = max(0.1, deadline - time.monotonic())
                    message = await asyncio.wait_for(ws.receive(), left)
                    seen.append(json.loads(message.data))
                wait_for(lambda: (driven.gate / "halfway").exists(), what="halfway")
                driven.proc.send_signal(signal.SIGKILL)
                while not rows(seen, "aborted"):
                    left = max(0.1, deadline - time.monotonic())
                    message = await asyncio.wait_for(ws.receive(), left)
                    seen.append(json.loads(message.data))
                return seen

        seen = _run(follow())
        assert seen[1]["type"] == "charts" and seen[1]["run_id"] == run_id
        kinds = [m["type"] for m in seen[2:]]
        assert "charts" not in kinds  # after the first charts only what is new
        samples = [s for m in seen if m["type"] == "samples" for s in m["samples"]]
        assert all(s["t"] >= seen[1]["t"][-1] for s in samples) if seen[1]["t"] else samples
        aborted = next(
            m["row"] for m in seen if m["type"] == "run" and m["row"]["status"] == "aborted"
        )
        assert aborted["run_id"] == run_id
    finally:
        driven.proc.kill()
        driven.proc.communicate(timeout=30)


def test_the_cli_prints_its_url_first_and_stops_on_sigterm(root: Path) -> None:
    root.mkdir(parents=True)
    proc = subprocess.Popen(
        [sys.executable, "-m", "otel_tracker.cli", "--root", str(root), "ui", "--port", "0"],
        env=child_env(root),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first = proc.stdout.readline()  # type: ignore[union-attr]
        assert first.startswith("otel-tracker ui: http://127.0.0.1:"), first
        port = int(first.rstrip().rstrip("/").rsplit(":", 1)[1])
        assert _get(f"http://127.0.0.1:{port}/", "/api/runs")[0] == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        proc.kill()
        proc.communicate(timeout=10)
    refused = subprocess.run(
        [sys.executable, "-m", "otel_tracker.cli", "--root", str(root), "ui", "--host", "0.0.0.0"],
        env=child_env(root),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode != 0 and refused.stdout == ""
    assert refused.stderr.count("\n") == 1 and "not a loopback address" in refused.stderr
    assert "--token" in refused.stderr and "Traceback" not in refused.stderr
    assert not os.listdir(root)  # read-only: nothing written under the root
