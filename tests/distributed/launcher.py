"""A multi-host launcher on one machine, as ``torchrun``/``srun`` start ranks.

Each simulated host is an agent process in its own UTS namespace (``unshare --uts``,
root only) with its own host name; it starts that host's ranks as its children with
the launcher's variables, the way torch elastic's agent or ``slurmstepd`` does. All
hosts share one runs root, as on a shared filesystem.

``python -m tests.distributed.launcher --hosts 2 --per-host 4 --style torch --job J -- python job.py``
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys


def rank_env(
    style: str, job: str, restart: int, node: int, hosts: int, per_host: int, local: int
) -> dict[str, str]:
    rank, world = node * per_host + local, hosts * per_host
    if style == "torch":
        return {
            "RANK": str(rank),
            "WORLD_SIZE": str(world),
            "LOCAL_RANK": str(local),
            "LOCAL_WORLD_SIZE": str(per_host),
            "GROUP_RANK": str(node),
            "TORCHELASTIC_RUN_ID": job,
            "TORCHELASTIC_RESTART_COUNT": str(restart),
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": "29500",
        }
    if style == "slurm":
        return {
            "SLURM_JOB_ID": job,
            "SLURM_STEP_ID": "0",
            "SLURM_PROCID": str(rank),
            "SLURM_NTASKS": str(world),
            "SLURM_LOCALID": str(local),
            "SLURM_NODEID": str(node),
            "SLURM_RESTART_COUNT": str(restart),
        }
    raise SystemExit(f"unknown style {style!r}")


def host_name(prefix: str, node: int, hosts: int) -> str:
    """``node-a``, ``node-b``... (``node-0001``... past 26 hosts)."""
    return f"{prefix}-{chr(ord('a') + node)}" if hosts <= 26 else f"{prefix}-{node:04d}"


def exit_code(codes: list[int]) -> int:
    """The first failure's status, as a shell reports it (128 + a signal's number)."""
    bad = next((c for c in codes if c), 0)
    return 128 - bad if bad < 0 else bad


def agent(args: argparse.Namespace) -> int:
    env = dict(os.environ)
    if args.host_name:
        socket.sethostname(args.host_name)  # this UTS namespace's own
        if args.root_per_host:  # no shared filesystem: each host its own root
            env["OTEL_TRACKER_ROOT"] = os.path.join(env["OTEL_TRACKER_ROOT"], args.host_name)
    procs = [
        subprocess.Popen(
            args.command,
            env={
                **env,
                **rank_env(
                    args.style, args.job, args.restart, args.node, args.hosts, args.per_host, local
                ),
            },
        )
        for local in range(args.per_host)
    ]
    return exit_code([p.wait() for p in procs])


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hosts", type=int, default=2)
    parser.add_argument("--per-host", type=int, default=4)
    parser.add_argument("--style", default="torch")
    parser.add_argument("--job", required=True)
    parser.add_argument("--restart", type=int, default=0)
    parser.add_argument("--host-prefix", default="node")
    parser.add_argument(
        "--root-per-host",
        action="store_true",
        help="each host writes under OTEL_TRACKER_ROOT/<host>: no shared filesystem",
    )
    parser.add_argument(
        "--same-host", action="store_true", help="one host: this machine's name, no namespace"
    )
    parser.add_argument("--agent", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--node", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--host-name", help=argparse.SUPPRESS)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    args.command = (
        [c for c in args.command if c != "--"] if args.command[:1] == ["--"] else args.command
    )
    if args.agent:
        return agent(args)
    if args.same_host:
        args.node, args.hosts, args.host_name = 0, 1, None
        return agent(args)
    agents = []
    for node in range(args.hosts):
        argv = [
            "unshare",
            "--uts",
            sys.executable,
            "-m",
            "tests.distributed.launcher",
            "--agent",
            "--node",
            str(node),
            "--host-name",
            host_name(args.host_prefix, node, args.hosts),
            "--hosts",
            str(args.hosts),
            "--per-host",
            str(args.per_host),
            "--style",
            args.style,
            "--job",
            args.job,
            "--restart",
            str(args.restart),
            *(["--root-per-host"] if args.root_per_host else []),
            "--",
            *args.command,
        ]
        agents.append(subprocess.Popen(argv))
    return exit_code([a.wait() for a in agents])


if __name__ == "__main__":
    sys.exit(main())
