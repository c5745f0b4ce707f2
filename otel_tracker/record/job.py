"""Which distributed job this process is a rank of, read from its launcher's environment.

torch elastic (``torchrun``), SLURM (``srun``), Open MPI (``mpirun``) and PMI
launchers (MPICH/Hydra, Intel MPI) put a rank, a world size and something that
names the job into every process they start. Every rank of one job derives the
same :attr:`JobIdentity.digest` from them, without talking to the others; the run
id, the trace id and the run span's id all follow from it (see
:mod:`otel_tracker.record.job_rendezvous`). Nothing here does I/O.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobIdentity:
    """One rank of one attempt of a job."""

    launcher: str  # torchrun, torch, slurm, openmpi, pmi
    key: str  # what names the job, prefixed by where it came from ("slurm:812.0")
    attempt: int  # 1, then 2 after an elastic restart
    rank: int
    world_size: int
    local_rank: int | None
    local_world_size: int | None
    node_rank: int | None
    # the n-th run this process of the job opens (a script that tracks "train" then
    # "eval"): every rank runs the same script, so each run's n is the same on all
    sequence: int = 1

    @property
    def digest(self) -> str:
        """sha256 of the job, the attempt and the run's sequence: the same on every
        rank of one attempt's run."""
        text = f"{self.key}\n{self.attempt}\n{self.sequence}"
        return hashlib.sha256(text.encode()).hexdigest()

    @property
    def job_id(self) -> str:
        """The job's id in the record: the digest's first 16 hex digits, the same on
        every attempt's runs (an attempt is told by :attr:`attempt`)."""
        return hashlib.sha256(self.key.encode()).hexdigest()[:16]

    @property
    def trace_id(self) -> int:
        return int(self.digest[:32], 16) or 1

    @property
    def run_span_id(self) -> int:
        return int(self.digest[32:48], 16) or 1

    @property
    def owner(self) -> bool:
        """Rank 0 writes the run's manifest; every other rank its own part."""
        return self.rank == 0

    @property
    def samples_host(self) -> bool:
        """One process per host samples it: local rank 0 (or every rank when the
        launcher does not say, so that no host goes unsampled)."""
        return self.local_rank in (None, 0)

    def section(self) -> dict[str, object]:
        """The manifest's ``job`` section as this rank writes it."""
        return {
            "id": self.job_id,
            "key": self.key,
            "launcher": self.launcher,
            "attempt": self.attempt,
            "rank": self.rank,
            "world_size": self.world_size,
            "local_rank": self.local_rank,
            "local_world_size": self.local_world_size,
            "node_rank": self.node_rank,
            "sequence": self.sequence,
        }


def _int(environ: Mapping[str, str], *names: str) -> int | None:
    for name in names:
        raw = environ.get(name, "").strip()
        if raw:
            try:
                return int(raw)
            except ValueError:
                return None
    return None


def _torch(env: Mapping[str, str]) -> tuple[str, str | None, int] | None:
    if "RANK" not in env or "WORLD_SIZE" not in env:
        return None
    run_id = env.get("TORCHELASTIC_RUN_ID", "").strip()
    restarts = _int(env, "TORCHELASTIC_RESTART_COUNT") or 0
    if run_id:
        # torchrun's default --rdzv-id is "none": the same for every job
        key = None if run_id.lower() == "none" else f"torchelastic:{run_id}"
        return "torchrun", key, restarts + 1
    return "torch", None, 1


def _slurm(env: Mapping[str, str]) -> tuple[str, str | None, int] | None:
    if "SLURM_PROCID" not in env or not ("SLURM_NTASKS" in env or "SLURM_NPROCS" in env):
        return None
    job = env.get("SLURM_JOB_ID", env.get("SLURM_JOBID", "")).strip()
    step = env.get("SLURM_STEP_ID", env.get("SLURM_STEPID", "")).strip()
    restarts = _int(env, "SLURM_RESTART_COUNT") or 0
    return "slurm", f"slurm:{job}.{step}" if job else None, restarts + 1


def _openmpi(env: Mapping[str, str]) -> tuple[str, str | None, int] | None:
    if "OMPI_COMM_WORLD_RANK" not in env:
        return None
    # the namespace repeats across mpirun invocations; the head node's URI (with its
    # random port) tells two of them apart
    namespace = env.get("PMIX_NAMESPACE", env.get("OMPI_MCA_ess_base_jobid", "")).strip()
    uri = env.get("OMPI_MCA_orte_hnp_uri", env.get("PMIX_SERVER_URI2", "")).strip()
    key = f"openmpi:{namespace}:{uri}" if namespace or uri else None
    return "openmpi", key, 1


def _pmi(env: Mapping[str, str]) -> tuple[str, str | None, int] | None:
    if "PMI_RANK" not in env:
        return None
    kvs = env.get("PMI_KVSNAME", "").strip()
    return "pmi", f"pmi:{kvs}" if kvs else None, 1


_LAUNCHERS = {
    "torch": (_torch, ("RANK",), ("WORLD_SIZE",), ("LOCAL_RANK",), ("LOCAL_WORLD_SIZE",)),
    "slurm": (
        _slurm,
        ("SLURM_PROCID",),
        ("SLURM_NTASKS", "SLURM_NPROCS"),
        ("SLURM_LOCALID",),
        ("SLURM_NTASKS_PER_NODE",),
    ),
    "openmpi": (
        _openmpi,
        ("OMPI_COMM_WORLD_RANK",),
        ("OMPI_COMM_WORLD_SIZE",),
        ("OMPI_COMM_WORLD_LOCAL_RANK",),
        ("OMPI_COMM_WORLD_LOCAL_SIZE",),
    ),
    "pmi": (_pmi, ("PMI_RANK",), ("PMI_SIZE",), ("MPI_LOCALRANKID",), ("MPI_LOCALNRANKS",)),
}
_NODE_RANK = {"torch": ("GROUP_RANK",), "slurm": ("SLURM_NODEID",)}


def detect_job(environ: Mapping[str, str], job_id: str | None = None) -> JobIdentity | None:
    """This process's rank of a job, or ``None``: no launcher, a world of one, or a
    launcher that names no job (then with one warning: set ``OTEL_TRACKER_JOB_ID``).

    The first launcher, in the order torch elastic, SLURM, Open MPI, PMI, whose
    variables give a world size above 1 wins (``torchrun`` inside a one-task ``srun``
    is a torch job). ``job_id`` (the configuration's: argument, else
    ``OTEL_TRACKER_JOB_ID``) names the job instead of the launcher.
    """
    for family, (probe, rank_vars, size_vars, local_vars, local_size_vars) in _LAUNCHERS.items():
        found = probe(environ)
        if found is None:
            continue
        rank, world = _int(environ, *rank_vars), _int(environ, *size_vars)
        if rank is None or world is None or world <= 1 or not 0 <= rank < world:
            continue
        launcher, key, attempt = found
        if job_id:
            key = f"job:{job_id}"
        if key is None:
            if rank == 0:
                logger.warning(
                    "otel-tracker: this process is rank 0 of %d under %s, which names no job; "
                    "each rank is tracked as a run of its own (set %s to the same value on "
                    "every rank to make them one run)",
                    world,
                    launcher,
                    "OTEL_TRACKER_JOB_ID",
                )
            return None
        node_vars = _NODE_RANK.get(family, ())
        return JobIdentity(
            launcher=launcher,
            key=key,
            attempt=attempt,
            rank=rank,
            world_size=world,
            local_rank=_int(environ, *local_vars),
            local_world_size=_int(environ, *local_size_vars),
            node_rank=_int(environ, *node_vars) if node_vars else None,
        )
    return None


_opened: dict[tuple[str, int], int] = {}  # (job, attempt) -> runs this process opened
_opened_lock = threading.Lock()


def next_run_of(job: JobIdentity) -> JobIdentity:
    """``job`` as the next run this process opens of it: a second ``track_run`` in the
    same script is a run of its own, never a rewrite of the first one's record."""
    with _opened_lock:
        n = _opened[(job.key, job.attempt)] = _opened.get((job.key, job.attempt), 0) + 1
    return dataclasses.replace(job, sequence=n)


# A rank's part is rewritten on its own transitions and at this interval, scaled so
# that the job's heartbeats cost the shared filesystem at most PART_WRITES_PER_S in
# all however many ranks it has (docs/distributed.md has the sums).
PART_WRITES_PER_S = 32.0


# A rank's logged series are appended to its own file every second up to this many
# ranks, then less often (at most every MAX_FLUSH_S: the points wait in memory, at
# most record/series.py's MAX_PENDING of them)
MAX_FLUSH_S = 30.0


def rank_flush_interval(world_size: int) -> float:
    """How often a rank other than 0 appends its ``run.log()`` points: every second up
    to 32 ranks, then at most 32 appends a second for the job, up to every 30 s."""
    return min(max(1.0, world_size / PART_WRITES_PER_S), MAX_FLUSH_S)


def rank_heartbeat(world_size: int, configured: float) -> float:
    """The heartbeat of a rank other than 0: the run's (5 s) up to 160 ranks, then
    slower: 30 s at 960 ranks, 128 s at 4,096."""
    return max(configured, world_size / PART_WRITES_PER_S)


def launcher_agent_pid() -> int:
    """The process that started this rank (``mpirun``/``orted``, torchrun's agent,
    ``slurmstepd``): its tree holds every rank of the host, so the host's sampling
    rank samples it. This process when it has no such parent (init adopted it)."""
    parent = os.getppid()
    return parent if parent > 1 else os.getpid()
