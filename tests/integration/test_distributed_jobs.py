"""Distributed jobs: every rank of a launcher's job joins one run, one trace.

Real peers: Debian's Open MPI ``mpirun`` (installed by scripts/test.sh), and
several hosts simulated on this machine by processes in their own UTS namespaces
(``unshare --uts``, each with its own host name) that share one runs root, started
with torchrun's and SLURM's variables by ``tests/distributed/launcher.py``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from otel_tracker.history.store import RunStore
from otel_tracker.status import get_all_run_status
from tests.helpers import child_env, otel_cli, validate_manifest, wait_for
from tests.otlp_receiver import OtlpHttpReceiver

REPO = Path(__file__).resolve().parents[2]
JOB = REPO / "tests" / "distributed" / "job.py"


def launch(
    root: Path,
    *,
    hosts: int,
    per_host: int,
    style: str = "torch",
    job: str,
    restart: int = 0,
    root_per_host: bool = False,
    **env: str,
) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.distributed.launcher",
            "--hosts",
            str(hosts),
            "--per-host",
            str(per_host),
            "--style",
            style,
            "--job",
            job,
            "--restart",
            str(restart),
            # one host: this one, so that a reader here sees a killed rank at once (by
            # its lock); readers elsewhere go by its heartbeat
            *(["--same-host"] if hosts == 1 else []),
            *(["--root-per-host"] if root_per_host else []),
            "--",
            sys.executable,
            str(JOB),
        ],
        cwd=REPO,
        env=child_env(root, PYTHONPATH=str(REPO), JOB_SIGNALS=str(root.parent), **env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # a failed test kills the whole job (see the fixture)
    )
    LAUNCHED.append(proc)
    return proc


LAUNCHED: list[subprocess.Popen[str]] = []


@pytest.fixture(autouse=True)
def _no_job_outlives_its_test() -> Any:
    yield
    while LAUNCHED:
        proc = LAUNCHED.pop()
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


def finish(proc: subprocess.Popen[str], timeout: float = 90) -> tuple[int, str]:
    _, err = proc.communicate(timeout=timeout)
    return proc.returncode, err


def only_run(root: Path) -> Any:
    views = RunStore.open(root).list()
    assert len(views) == 1, [v.run_id for v in views]
    return views[0]


def test_eight_ranks_on_two_hosts_are_one_run_sampled_once_per_host(root: Path) -> None:
    receiver = OtlpHttpReceiver()
    try:
        code, err = finish(
            launch(
                root,
                hosts=2,
                per_host=4,
                job="elastic-8",
                OTEL_TRACKER_OTLP="true",
                OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
                OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
                OTEL_TRACKER_EXPORT_TIMEOUT="10",
            )
        )
    finally:
        receiver.close()
    assert code == 0, err
    view = only_run(root)
    # one trace: every rank's steps under the run's span, from both hosts
    spans = receiver.received.spans
    assert {s["trace_id"] for s in spans} == {view.doc["trace"]["trace_id"]}
    assert {s["resource"]["host.name"] for s in spans} == {"node-a", "node-b"}
    trains = [s for s in spans if s["attributes"].get("cicd.pipeline.task.name") == "train"]
    assert sorted(s["resource"]["otel_tracker.job.rank"] for s in trains) == list(range(8))
    assert view.status == "completed"
    job = view.doc["job"]
    assert [r["rank"] for r in job["ranks"]] == list(range(8))
    assert job["hosts"] == ["node-a", "node-b"]
    assert job["counts"] == {"completed": 8}
    assert [r["host"] for r in job["ranks"]] == ["node-a"] * 4 + ["node-b"] * 4
    # rank 0 owns the manifest (schema 2, its section valid); every other rank its part
    manifest = json.loads(view.manifest_path.read_text())
    validate_manifest(manifest)
    assert manifest["schema_version"] == 2 and manifest["job"]["rank"] == 0
    parts = sorted(p.name for p in (view.path / "parts").glob("rank-*.json"))
    assert parts == [f"rank-{r:05d}.json" for r in range(1, 8)]
    for part in parts:
        validate_manifest(json.loads((view.path / "parts" / part).read_text()))
    # one sampler per host: local rank 0 of each, into its host's own telemetry file
    assert [r["rank"] for r in job["ranks"] if r["samples_host"]] == [0, 4]
    assert (view.path / "telemetry.jsonl").stat().st_size > 0
    assert (view.path / "hosts" / "node-b" / "telemetry.jsonl").stat().st_size > 0
    assert not (view.path / "hosts" / "node-a").exists()
    # rank 0's sampler saw the host's ranks: the launcher's tree, not only itself
    processes = manifest["telemetry"]["processes"]
    assert len({p["pid"] for p in processes}) >= 4
    # readers: list, show, the typed API
    listed = otel_cli(root, "list")
    assert "8 ranks / 2 hosts" in listed.stdout, listed.stdout
    shown = otel_cli(root, "show", "latest")
    assert "8 ranks / 2 hosts (torchrun, attempt 1): 8 completed" in shown.stdout
    assert "node-b" in shown.stdout and "rank" in shown.stdout
    status_text = otel_cli(root, "status", "latest").stdout
    assert "8 ranks / 2 hosts: 8 completed" in status_text, status_text
    (status,) = get_all_run_status(root)
    assert status.job is not None and status.job.world_size == 8
    assert [r.host for r in status.job.ranks][3:5] == ["node-a", "node-b"]


def test_slurm_ranks_on_two_hosts_are_one_run(root: Path) -> None:
    code, err = finish(launch(root, hosts=2, per_host=2, style="slurm", job="4242"))
    assert code == 0, err
    view = only_run(root)
    assert view.doc["job"]["launcher"] == "slurm" and view.doc["job"]["key"] == "slurm:4242.0"
    assert view.doc["job"]["hosts"] == ["node-a", "node-b"]
    assert view.status == "completed" and len(view.doc["job"]["ranks"]) == 4


def test_without_a_shared_filesystem_each_host_has_its_share_and_gather_joins_them(
    root: Path,
) -> None:
    code, err = finish(launch(root, hosts=2, per_host=2, job="apart-4", root_per_host=True))
    assert code == 0, err
    head = only_run(root / "node-a")
    share = only_run(root / "node-b")
    # one job, one trace, a run under each root holding that host's ranks
    assert head.doc["job"]["id"] == share.doc["job"]["id"]
    assert head.doc["trace"]["trace_id"] == share.doc["trace"]["trace_id"]
    assert [r["rank"] for r in head.doc["job"]["ranks"]] == [0, 1]
    assert head.doc["job"]["missing"] == [2, 3]
    assert head.status == "completed" and head.inference.reason == "2 of 4 ranks never reported"
    assert [r["rank"] for r in share.doc["job"]["ranks"]] == [2, 3]
    assert share.status == "completed"
    assert any("otel-tracker gather" in w for w in share.doc["warnings"])
    assert "2 of 4 ranks / 1 host" in otel_cli(root / "node-b", "show", "latest").stdout
    gathered = otel_cli(root / "node-a", "gather", "latest", "--from", str(root / "node-b"))
    assert gathered.returncode == 0, gathered.stderr
    whole = only_run(root / "node-a")
    assert [r["rank"] for r in whole.doc["job"]["ranks"]] == [0, 1, 2, 3]
    assert whole.doc["job"]["hosts"] == ["node-a", "node-b"]
    assert whole.status == "completed" and whole.doc["job"]["missing"] == []
    assert (whole.path / "hosts" / "node-b" / "telemetry.jsonl").stat().st_size > 0
    again = otel_cli(root / "node-a", "gather", "latest", "--from", str(root / "node-b"))
    assert "copied 0 file(s)" in again.stdout
    other = otel_cli(root / "node-a", "gather", "latest", "--from", str(root))
    assert other.returncode != 0 and "no run of job" in other.stderr


def test_a_rank_killed_mid_step_aborts_the_job_naming_it(root: Path) -> None:
    proc = launch(root, hosts=1, per_host=4, job="kill-4", JOB_MODE="kill", JOB_BAD_RANK="2")
    victim = root.parent / "victim"
    wait_for(lambda: victim.exists() and victim.read_text(), 60, "rank 2 in its step")

    # the others finish; status shows the job by its slowest rank, which is rank 2
    def others_done() -> bool:
        status = json.loads(otel_cli(root, "status", "--json").stdout)
        return (status.get("job") or {}).get("counts", {}).get("completed") == 3

    wait_for(others_done, 60, "ranks 0, 1 and 3 completed")
    live = otel_cli(root, "status", "latest")
    assert "[slowest: rank 2 on " in live.stdout, live.stdout
    # its progress inside the step reaches readers at its heartbeat (5 s for 4 ranks)
    assert "Step 2/3 – train" in live.stdout, live.stdout
    assert "4 ranks / 1 host: 3 completed, 1 running" in live.stdout
    os.kill(int(victim.read_text()), signal.SIGKILL)
    code, _ = finish(proc)
    assert code != 0
    view = only_run(root)
    assert view.status == "aborted"
    assert view.inference.reason.startswith("rank 2 on host ")
    assert "at step 'train' aborted" in view.inference.reason
    ranks = {r["rank"]: r for r in view.doc["job"]["ranks"]}
    assert ranks[2]["status"] == "aborted"
    # the other ranks' records are intact
    assert all(ranks[r]["status"] == "completed" for r in (0, 1, 3))
    assert all(ranks[r]["steps_completed"] == 3 for r in (0, 1, 3))
    shown = otel_cli(root, "show", "latest").stdout
    assert "first failure" in shown


def test_the_first_failure_is_named_not_the_timeouts_after_it(root: Path) -> None:
    code, _ = finish(
        launch(root, hosts=1, per_host=4, job="fail-4", JOB_MODE="fail", JOB_BAD_RANK="3")
    )
    assert code != 0
    view = only_run(root)
    assert view.status == "failed"
    job = view.doc["job"]
    assert job["first_failure"] == 3 and sorted(job["died_with"]) == [0, 1, 2]
    summary = otel_cli(root, "summary", "latest", "--format", "json")
    found = [
        r
        for r in json.loads(summary.stdout)["analysis"]["recommendations"]
        if r["id"] == "job-first-failure"
    ]
    assert len(found) == 1, summary.stdout
    assert found[0]["evidence"]["rank"] == 3
    assert "illegal memory access" in found[0]["detected"]


def test_a_slow_rank_is_named_as_the_straggler(root: Path) -> None:
    code, err = finish(
        launch(root, hosts=1, per_host=4, job="slow-4", JOB_MODE="slow", JOB_BAD_RANK="1")
    )
    assert code == 0, err
    summary = otel_cli(root, "summary", "latest", "--format", "json")
    found = [
        r
        for r in json.loads(summary.stdout)["analysis"]["recommendations"]
        if r["id"] == "job-straggler"
    ]
    assert [(r["step"], r["evidence"]["rank"]) for r in found] == [("train", 1)], found
    assert found[0]["evidence"]["duration_s"] >= 1.25 * found[0]["evidence"]["median_s"]


def test_an_elastic_restart_is_a_new_attempt_of_the_same_job(root: Path) -> None:
    for restart in (0, 1):
        code, err = finish(launch(root, hosts=1, per_host=2, job="elastic-r", restart=restart))
        assert code == 0, err
    views = RunStore.open(root).list()
    assert len(views) == 2
    by_attempt = {v.doc["job"]["attempt"]: v for v in views}
    assert sorted(by_attempt) == [1, 2]
    assert by_attempt[1].doc["job"]["id"] == by_attempt[2].doc["job"]["id"]
    assert by_attempt[1].run_id != by_attempt[2].run_id
    assert all(len(v.doc["job"]["ranks"]) == 2 for v in views)
    assert "attempt 2" in otel_cli(root, "list").stdout
    # prune forgets the rendezvous of the runs it removes
    assert len(list((root / ".jobs").glob("*.json"))) == 2
    pruned = otel_cli(root, "prune", "--keep-last", "1", "--yes")
    assert pruned.returncode == 0, pruned.stderr
    (kept,) = RunStore.open(root).list()
    (left,) = (root / ".jobs").glob("*.json")
    assert json.loads(left.read_text())["run_id"] == kept.run_id


@pytest.fixture
def mpirun() -> str:
    found = shutil.which("mpirun")
    assert found, "mpirun is missing: scripts/test.sh installs Debian's openmpi-bin"
    return found


def test_a_real_mpirun_job_is_one_run_and_one_trace(root: Path, mpirun: str) -> None:
    receiver = OtlpHttpReceiver()
    try:
        result = subprocess.run(
            [
                mpirun,
                "--allow-run-as-root",
                "--oversubscribe",
                "-np",
                "4",
                sys.executable,
                str(JOB),
            ],
            cwd=REPO,
            env=child_env(
                root,
                OTEL_TRACKER_OTLP="true",
                OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
                OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
                OTEL_TRACKER_EXPORT_TIMEOUT="10",
            ),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        view = only_run(root)
        job = view.doc["job"]
        assert job["launcher"] == "openmpi" and view.status == "completed"
        assert [r["rank"] for r in job["ranks"]] == [0, 1, 2, 3]
        spans = receiver.received.spans
        assert {s["trace_id"] for s in spans} == {view.doc["trace"]["trace_id"]}
        run_span = [s for s in spans if s["name"] == "RUN ddp-train"]
        assert len(run_span) == 1
        ranks = {s["resource"]["otel_tracker.job.rank"] for s in spans}
        assert ranks == {0, 1, 2, 3}
        # every rank's own span nests under the run's, and its steps under its own
        rank_spans = [s for s in spans if s["name"].startswith("RANK ")]
        assert len(rank_spans) == 3
        assert {s["parent_span_id"] for s in rank_spans} == {run_span[0]["span_id"]}
        trains = [s for s in spans if s["attributes"].get("cicd.pipeline.task.name") == "train"]
        assert len(trains) == 4
        assert len({s["resource"]["service.instance.id"] for s in spans}) == 4
        # one sampler on this one host (local rank 0), its series labelled for dashboards
        metrics = [m for m in receiver.received.metrics if m["name"] == "process.memory.usage"]
        assert metrics, receiver.received.metric_names()
        assert {m["attributes"].get("otel_tracker.job.rank") for m in metrics} == {0}
        assert {m["attributes"].get("host.name") for m in metrics} == {view.doc["process"]["host"]}
    finally:
        receiver.close()


def test_a_real_torchrun_ddp_job_is_one_run(root: Path) -> None:
    # torchrun --standalone names its job with a random rendezvous id; gloo on CPU
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc-per-node",
            "2",
            str(REPO / "tests" / "distributed" / "ddp_job.py"),
        ],
        cwd=REPO,
        env=child_env(root, OMP_NUM_THREADS="1"),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    view = only_run(root)
    job = view.doc["job"]
    assert view.status == "completed" and job["launcher"] == "torchrun"
    assert [(r["rank"], r["status"], r["steps_completed"]) for r in job["ranks"]] == [
        (0, "completed", 1),
        (1, "completed", 1),
    ]
