"""What a run ran on: host, interpreter, packages, git state, allow-listed env.

Everything here is best effort and bounded: a missing ``git`` or a slow
repository yields ``None``, never an exception or a long stall.
"""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
from collections.abc import Iterable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from .redact.objects import redact_value

# Only these variables are ever recorded (plus the user's OTEL_TRACKER_ENV_ALLOWLIST);
# values still pass through redaction.
DEFAULT_ENV_ALLOWLIST = (
    "CUDA_VISIBLE_DEVICES",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "PYTHONHASHSEED",
    "VIRTUAL_ENV",
    "CONDA_DEFAULT_ENV",
    "SLURM_JOB_ID",
    "SLURM_JOB_NAME",
    "SLURM_ARRAY_TASK_ID",
    "CI",
    "GITHUB_RUN_ID",
    "GITHUB_SHA",
    "OTEL_SERVICE_NAME",
)

PACKAGES_OF_INTEREST = (
    "otel-tracker",
    "opentelemetry-sdk",
    "numpy",
    "scipy",
    "pandas",
    "scikit-learn",
    "torch",
    "jax",
    "jaxlib",
    "tensorflow",
    "gymnasium",
    "gym",
    "stable-baselines3",
    "imitation",
    "nvidia-ml-py",
)

GIT_TIMEOUT_S = 2.0


def package_versions(names: Iterable[str] = PACKAGES_OF_INTEREST) -> dict[str, str]:
    """Installed versions of the named distributions (absent ones are left out)."""
    versions: dict[str, str] = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
        except Exception:  # a broken dist-info must not break a run
            continue
    return versions


def _git(cwd: Path, *args: str) -> str | None:
    try:
        result = subprocess.run(
            ["git", *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_S,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if result.returncode != 0:
        return None
    return result.stdout.strip()


def git_info(cwd: Path) -> dict[str, Any] | None:
    """Commit, branch and dirtiness of the repository containing ``cwd``, if any.

    One ``git status --porcelain=v2 --branch`` call: a run starts one process, not three.
    """
    out = _git(cwd, "status", "--porcelain=v2", "--branch", "--untracked-files=no")
    if out is None:
        return None
    commit = branch = None
    dirty = False
    for line in out.splitlines():
        if line.startswith("# branch.oid "):
            commit = line.split(" ", 2)[2]
        elif line.startswith("# branch.head "):
            branch = line.split(" ", 2)[2]
        elif line and not line.startswith("#"):
            dirty = True
    if not commit or commit == "(initial)":
        return None
    return {"commit": commit, "branch": None if branch == "(detached)" else branch, "dirty": dirty}


def allowed_env(environ: Mapping[str, str], extra: Iterable[str] = ()) -> dict[str, str]:
    """The allow-listed environment variables, with secret-looking values redacted."""
    names = dict.fromkeys((*DEFAULT_ENV_ALLOWLIST, *extra))
    return {name: redact_value(environ[name], name) for name in names if name in environ}


def collect_environment(
    cwd: Path, environ: Mapping[str, str] | None = None, extra_env: Iterable[str] = ()
) -> dict[str, Any]:
    """The manifest's ``environment`` section."""
    env = os.environ if environ is None else environ
    return {
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "executable": sys.executable,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "packages": package_versions(),
        "env": allowed_env(env, extra_env),
    }


def host_name() -> str:
    """This machine's host name."""
    return socket.gethostname()
