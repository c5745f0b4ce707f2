"""Which job a process is a rank of (launcher variables), the rendezvous that gives
every rank one run id, and how readers merge the ranks into the job's status."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from otel_tracker.config import TrackerConfig
from otel_tracker.contract.ranks import merge_job
from otel_tracker.errors import ConfigError
from otel_tracker.record import job as job_module
from otel_tracker.record.job import JobIdentity, detect_job, rank_flush_interval, rank_heartbeat
from otel_tracker.record.job_rendezvous import SAME_JOB_SKEW_S, job_run

TORCH = {
    "RANK": "3",
    "WORLD_SIZE": "8",
    "LOCAL_RANK": "3",
    "LOCAL_WORLD_SIZE": "4",
    "GROUP_RANK": "0",
    "TORCHELASTIC_RUN_ID": "exp-1",
    "TORCHELASTIC_RESTART_COUNT": "0",
}
SLURM = {
    "SLURM_JOB_ID": "812",
    "SLURM_STEP_ID": "0",
    "SLURM_PROCID": "5",
    "SLURM_NTASKS": "8",
    "SLURM_LOCALID": "1",
    "SLURM_NODEID": "1",
}
OPENMPI = {
    "OMPI_COMM_WORLD_RANK": "1",
    "OMPI_COMM_WORLD_SIZE": "4",
    "OMPI_COMM_WORLD_LOCAL_RANK": "1",
    "OMPI_COMM_WORLD_LOCAL_SIZE": "4",
    "PMIX_NAMESPACE": "1592000513",
    "OMPI_MCA_orte_hnp_uri": "1592000512.0;tcp://10.0.0.2:41465",
}
PMI = {"PMI_RANK": "2", "PMI_SIZE": "4", "MPI_LOCALRANKID": "0", "PMI_KVSNAME": "kvs_77_0"}


@pytest.mark.parametrize(
    ("env", "launcher", "key", "rank", "world", "local", "node"),
    [
        (TORCH, "torchrun", "torchelastic:exp-1", 3, 8, 3, 0),
        (SLURM, "slurm", "slurm:812.0", 5, 8, 1, 1),
        (OPENMPI, "openmpi", "openmpi:1592000513:1592000512.0;tcp://10.0.0.2:41465", 1, 4, 1, None),
        (PMI, "pmi", "pmi:kvs_77_0", 2, 4, 0, None),
    ],
)
def test_each_launcher_names_the_job_and_the_rank(
    env: dict[str, str], launcher: str, key: str, rank: int, world: int, local: int, node: Any
) -> None:
    job = detect_job(env)
    assert job is not None
    assert (job.launcher, job.key, job.rank, job.world_size) == (launcher, key, rank, world)
    assert (job.local_rank, job.node_rank, job.attempt) == (local, node, 1)


def test_every_rank_of_a_job_derives_the_same_ids_and_an_attempt_its_own() -> None:
    ranks = [detect_job({**TORCH, "RANK": str(r), "LOCAL_RANK": str(r % 4)}) for r in range(8)]
    assert len({(j.digest, j.trace_id, j.run_span_id, j.job_id) for j in ranks}) == 1
    assert [j.owner for j in ranks] == [True] + [False] * 7
    assert [j.samples_host for j in ranks] == [True, False, False, False] * 2
    restarted = detect_job({**TORCH, "TORCHELASTIC_RESTART_COUNT": "1"})
    assert restarted is not None and restarted.attempt == 2
    assert restarted.digest != ranks[0].digest and restarted.job_id == ranks[0].job_id


def test_no_job_without_a_launcher_a_world_of_one_or_a_bad_rank() -> None:
    assert detect_job({}) is None
    assert detect_job({**TORCH, "WORLD_SIZE": "1", "RANK": "0"}) is None
    assert detect_job({**TORCH, "RANK": "8"}) is None
    assert detect_job({**TORCH, "RANK": "x"}) is None


def test_torch_inside_a_one_task_srun_is_a_torch_job() -> None:
    job = detect_job({**SLURM, "SLURM_NTASKS": "1", "SLURM_PROCID": "0", **TORCH})
    assert job is not None and job.launcher == "torchrun"


def test_a_launcher_that_names_no_job_tracks_ranks_alone_with_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    anonymous = {**TORCH, "TORCHELASTIC_RUN_ID": "none", "RANK": "0"}
    assert detect_job(anonymous) is None
    assert detect_job({**anonymous, "RANK": "1"}) is None
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "OTEL_TRACKER_JOB_ID" in warnings[0]
    named = detect_job(anonymous, job_id="nightly-42")
    assert named is not None and named.key == "job:nightly-42"


def test_job_settings_come_from_arguments_then_the_environment() -> None:
    env = {"OTEL_TRACKER_JOB_ID": " nightly ", "OTEL_TRACKER_DISTRIBUTED": "false"}
    config = TrackerConfig.resolve(environ=env)
    assert (config.job_id, config.distributed) == ("nightly", False)
    config = TrackerConfig.resolve(job_id="mine", distributed=True, environ=env)
    assert (config.job_id, config.distributed) == ("mine", True)
    with pytest.raises(ConfigError):
        TrackerConfig.resolve(job_id="  ", environ={})


def test_rank_heartbeats_keep_the_shared_filesystem_load_bounded() -> None:
    assert rank_heartbeat(8, 5.0) == 5.0
    assert rank_heartbeat(960, 5.0) == 30.0
    assert rank_heartbeat(4096, 5.0) == 128.0
    for world in (8, 64, 960, 4096, 65536):
        assert world / rank_heartbeat(world, 5.0) <= 32.0
    assert [rank_flush_interval(w) for w in (8, 64, 960, 4096)] == [1.0, 2.0, 30.0, 30.0]


RENDEZVOUS = """
import json
import sys
from pathlib import Path
from otel_tracker.record.job import detect_job
from otel_tracker.record.job_rendezvous import job_run
env = {**json.loads(sys.argv[3]), "RANK": sys.argv[2]}
print(job_run(Path(sys.argv[1]), "train", detect_job(env))[0])
"""


def test_ranks_racing_to_the_rendezvous_all_get_one_run(tmp_path: Path) -> None:
    # real processes, started together: whoever links first, all take its run id
    ranks = [
        subprocess.Popen(
            [sys.executable, "-c", RENDEZVOUS, str(tmp_path), str(r % 8), json.dumps(TORCH)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for r in range(16)
    ]
    ids = [p.communicate(timeout=60)[0].strip() for p in ranks]
    assert all(p.returncode == 0 for p in ranks)
    assert len(set(ids)) == 1 and ids[0]
    assert (tmp_path / ids[0]).is_dir()
    (entry,) = (tmp_path / ".jobs").glob("*.json")
    assert json.loads(entry.read_text())["run_id"] == ids[0]
    assert [p.name for p in (tmp_path / ".jobs").iterdir() if p.name.endswith(".tmp")] == []


def _job(rank: int = 0) -> JobIdentity:
    job = detect_job({**TORCH, "RANK": str(rank)})
    assert job is not None
    return job


def test_a_job_id_used_again_later_gets_a_run_of_its_own(tmp_path: Path) -> None:
    now = time.time()
    later = now + SAME_JOB_SKEW_S + 5
    first, _ = job_run(tmp_path, "train", _job(0), started=now)
    assert job_run(tmp_path, "train", _job(1), started=now + 5)[0] == first
    # the same --rdzv-id again, started after the first job's rendezvous was made
    second, _ = job_run(tmp_path, "train", _job(1), started=later, now=lambda: later + 1)
    assert second != first
    assert job_run(tmp_path, "train", _job(0), started=later + 1)[0] == second
    assert sorted(p.name[64:] for p in (tmp_path / ".jobs").iterdir()) == [".2.json", ".json"]
    # a run that ended before this process started is an earlier job's too
    third_root = tmp_path / "other"
    run_id, run_dir = job_run(third_root, "train", _job(0), started=now)
    (run_dir / "manifest.json").write_text(
        json.dumps({"status": "completed", "ended_at": "2020-01-01T00:00:00Z"})
    )
    assert job_run(third_root, "train", _job(1), started=now + 1)[0] != run_id


def _rank(
    rank: int,
    status: str,
    *,
    host: str = "a",
    ended: str | None = None,
    step: str = "train",
    error: Any = None,
) -> dict[str, Any]:
    return {
        "job": {"rank": rank, "host": host, "local_rank": rank % 4, "world_size": 4},
        "process": {"host": host, "pid": 100 + rank},
        "status": status,
        "ended_at": ended,
        "heartbeat_at": ended,
        "steps": [
            {
                "name": step,
                "status": "failed" if status == "failed" else "running",
                "started_at": "x",
            }
        ],
        "error": error,
    }


def _merge(
    owner: dict[str, Any], owner_status: str, parts: list[dict[str, Any]]
) -> tuple[str, Any]:
    return merge_job(owner, owner_status, None, parts, lambda p: (p["status"], None))


def test_the_job_is_completed_only_when_every_rank_completed() -> None:
    owner = _rank(0, "completed")
    owner["job"]["id"] = "j"
    status, reason = _merge(
        owner, "completed", [_rank(1, "completed"), _rank(2, "running"), _rank(3, "completed")]
    )
    assert status == "running" and "1 rank still running" in reason
    owner = _rank(0, "completed")
    status, reason = _merge(owner, "completed", [_rank(1, "completed"), _rank(3, "completed")])
    assert status == "completed" and reason == "1 of 4 ranks never reported"
    assert owner["job"]["missing"] == [2]


def test_the_first_failure_is_the_cause_and_the_later_ones_died_with_it() -> None:
    owner = _rank(0, "failed", ended="2026-12-03T10:00:09Z", error={"message": "NCCL timeout"})
    parts = [
        _rank(1, "failed", ended="2026-12-03T10:00:08Z", error={"message": "NCCL timeout"}),
        _rank(2, "failed", host="b", ended="2026-12-03T10:00:01Z", error={"message": "CUDA OOM"}),
        _rank(3, "completed"),
    ]
    status, reason = _merge(owner, "failed", parts)
    assert status == "failed"
    assert reason == "rank 2 on host b at step 'train' failed: CUDA OOM (then 2 more ranks)"
    assert owner["job"]["first_failure"] == 2 and owner["job"]["died_with"] == [1, 0]
    assert owner["job"]["counts"] == {"failed": 3, "completed": 1}
    assert owner["job"]["hosts"] == ["a", "b"]


def test_a_killed_rank_aborts_the_job_even_while_rank_0_runs() -> None:
    owner = _rank(0, "running")
    status, reason = _merge(owner, "running", [_rank(1, "aborted", ended="2026-12-03T10:00:01Z")])
    assert status == "aborted" and reason.startswith("rank 1 on host a at step 'train' aborted")


def test_every_rank_joins_one_trace_even_inside_an_application_span(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from opentelemetry import context as otel_context
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from otel_tracker import track_run

    app = TracerProvider().get_tracer("app")
    finished = []
    for rank in (0, 1):
        # each rank is a process of its own: its first run of the job
        monkeypatch.setattr(job_module, "_opened", {})
        exporter = InMemorySpanExporter()  # each run shuts its processors down
        env = {**TORCH, "RANK": str(rank), "LOCAL_RANK": str(rank)}
        # the application's own span is open around track_run on this rank
        with (
            app.start_as_current_span(f"app {rank}"),
            track_run(
                "train",
                root=root,
                environ=env,
                span_processors=[SimpleSpanProcessor(exporter)],
                resources=False,
                progress="off",
                install_signal_handlers=False,
            ) as run,
            run.step("fit"),
        ):
            pass
        finished += exporter.get_finished_spans()
        assert not trace.get_current_span(otel_context.get_current()).get_span_context().is_valid
    job = _job(0)
    spans = {s.name: s for s in finished}
    owner, other = spans["RUN train"], spans["RANK 1"]
    assert owner.context.trace_id == other.context.trace_id == job.trace_id
    assert owner.context.span_id == job.run_span_id and owner.parent is None
    assert other.parent is not None and other.parent.span_id == job.run_span_id
    assert trace.format_trace_id(job.trace_id) == run.trace_id


def test_a_script_that_tracks_two_runs_makes_two_runs_on_every_rank(root: Path) -> None:
    from otel_tracker import track_run

    env = {**TORCH, "RANK": "0", "LOCAL_RANK": "0", "TORCHELASTIC_RUN_ID": "two-runs"}
    kwargs: dict[str, Any] = {
        "root": root,
        "environ": env,
        "resources": False,
        "progress": "off",
        "install_signal_handlers": False,
    }
    with track_run("train", **kwargs) as train:
        pass
    with track_run("eval", **kwargs) as evaluation:
        pass
    assert train.run_id != evaluation.run_id
    assert json.loads(train.manifest_path.read_text())["name"] == "train"
    assert [train.job.sequence, evaluation.job.sequence] == [1, 2]
    assert train.trace_id != evaluation.trace_id
