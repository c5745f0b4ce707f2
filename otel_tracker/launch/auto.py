"""``otel-tracker run --auto``: a Python child reports its own process as a step.

The wrapper puts :mod:`otel_tracker.launch.autorun` first on the child's ``PYTHONPATH``
and sets ``OTEL_TRACKER_AUTO=1``; the ``sitecustomize`` there calls
:func:`start` before the program runs. It joins the wrapper's run (see
:mod:`otel_tracker.record.join`) with one step named after the program, and ends it at
interpreter exit with the truth it can know: an uncaught exception fails it, a
``sys.exit(code)`` is recorded with its code, a signal cancels it (the run's
own handlers), and ``os._exit`` or SIGKILL leave it running for readers to call
``aborted`` (see :mod:`otel_tracker.integrations.process_run`). The integrations
then wait for tqdm and the training frameworks to be imported (see
:mod:`otel_tracker.integrations.auto`). Only this process is instrumented: the
variables are removed from its environment at once, so its own Python children
start plain.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import MutableMapping, Sequence
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

AUTO_ENV = "OTEL_TRACKER_AUTO"
BOOTSTRAP_DIR = Path(__file__).resolve().parent / "autorun"


def auto_environment(env: MutableMapping[str, str]) -> MutableMapping[str, str]:
    """``env`` for a child to instrument: the bootstrap first on ``PYTHONPATH``."""
    path = env.get("PYTHONPATH")
    env["PYTHONPATH"] = os.pathsep.join([str(BOOTSTRAP_DIR), *([path] if path else [])])
    env[AUTO_ENV] = "1"
    return env


def _forget(environ: MutableMapping[str, str]) -> None:
    environ.pop(AUTO_ENV, None)
    kept = [p for p in environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    kept = [p for p in kept if Path(p).resolve() != BOOTSTRAP_DIR]
    if kept:
        environ["PYTHONPATH"] = os.pathsep.join(kept)
    else:
        environ.pop("PYTHONPATH", None)


def program_name(argv: Sequence[str]) -> str:
    """What the interpreter was asked to run: ``train.py``, ``pkg.module``, ``python -c``."""
    args = list(argv[1:])
    while args:
        arg = args.pop(0)
        if arg == "-m" and args:
            return args[0]
        if arg.startswith("-m") and len(arg) > 2:
            return arg[2:]
        if arg == "-c" or arg.startswith("-c"):
            return "python -c"
        if arg in ("-W", "-X", "--check-hash-based-pycs"):
            args = args[1:]
            continue
        if arg == "-" or not arg.startswith("-"):
            return Path(arg).name if arg != "-" else "python -"
    return "python"


def start(environ: MutableMapping[str, str] | None = None) -> Any:
    """Track this process as one step of the launcher's run, ended at exit, and
    attach the integrations for what the program goes on to import."""
    env = os.environ if environ is None else environ
    if env.get(AUTO_ENV) != "1":
        return None
    _forget(env)
    name = program_name(getattr(sys, "orig_argv", sys.argv))
    from ..integrations.auto import attach_integrations
    from ..integrations.process_run import start_process_run

    tracked = start_process_run(name, step=name, progress="off")
    if tracked is None:
        return None
    attach_integrations(tracked, environ=env)
    return tracked.run
