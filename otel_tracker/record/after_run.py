"""What a run's end hands to a process of its own: packing the run's telemetry and
applying a retention policy to the root.

Both are ``otel-tracker`` commands (``compact``, ``prune``) run one after the other
by a shell that is started in the background and exits at once, so the work is
never a child of the pipeline (no zombie, and no process in the next run's sampled
tree) and the exit waits for none of it: the run pays one ``Popen``, about a
millisecond, and a thread reaps the shell.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import threading
from pathlib import Path

from ..contract.telemetry_form import telemetry_bytes
from ..contract.telemetry_pack import PACK_ABOVE_BYTES

RETENTION_LOG = "retention.log"


def after_run_commands(
    root: Path,
    run_dir: Path | None,
    *,
    pack: tuple[float, float] | None,
    retention: str | None,
) -> list[list[str]]:
    """The commands for a run that ended in ``run_dir``: ``pack`` is (window, roll-up)
    seconds when finished runs' telemetry is packed (only beyond
    :data:`PACK_ABOVE_BYTES`: a short run's stays plain text)."""
    cli = [sys.executable, "-m", "otel_tracker.cli", "--root", os.fspath(root)]
    commands = []
    if pack is not None and run_dir is not None and telemetry_bytes(run_dir) > PACK_ABOVE_BYTES:
        window, rollup = (f"{s:.3f}s" for s in pack)
        commands.append(
            [
                *cli,
                "compact",
                run_dir.name,
                "--window",
                window,
                "--rollup",
                rollup,
                "--yes",
                "--quiet",
            ]
        )
    if retention is not None:
        log = os.path.join(root, RETENTION_LOG)
        commands.append([*cli, "prune", "--policy", retention, "--yes", "--log", log])
    return commands


def spawn_detached(commands: list[list[str]], name: str = "otel-tracker-after-run") -> None:
    """Run ``commands`` in order, in the background, in a session of their own."""
    if not commands:
        return
    script = "; ".join(shlex.join(c) for c in commands)
    shell = subprocess.Popen(
        ["/bin/sh", "-c", f"({script}) </dev/null >/dev/null 2>&1 &", name],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # a Ctrl-C meant for the pipeline does not stop it
        close_fds=True,
    )
    threading.Thread(target=shell.wait, name=name, daemon=True).start()
