"""The content of the TensorBoard and W&B directories a command left, into its run.

- Each TensorBoard scalar becomes a metric series of the run (``run.import_series``)
  with its own steps and times; its hparams become ``params.tensorboard``.
- Each W&B run's summary values (or, where W&B wrote one, its history) become series;
  its config becomes ``params.wandb``.

Every imported key names its source (``"tensorboard:runs/exp1"``,
``"wandb:wandb/offline-run-..."``), shown by ``show``, ``summary`` and ``compare``.
Keys are the tool's own names. Where several directories of one tool hold the
same names (Keras' ``logs/train`` and ``logs/validation``), each is prefixed with
its directory (``train/epoch_loss``) or W&B run id. A key the run (or a process that
joined it) logged itself is left as logged: the script's own ``run.log()`` wins over
the same value read back from a file.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..contract.parts import read_parts
from ..contract.paths import outermost
from ..errors import MissingExtraError
from .artifacts import Artifact
from .tensorboard_content import Point, read_event_dir
from .wandb_content import read_wandb_run, wandb_run_id

logger = logging.getLogger(__name__)

MAX_SECONDS = 10.0  # for all of a run's directories: the run's end waits on it
MAX_PARAMS_BYTES = 256 * 1024  # of imported params (a YAML alias bomb stays out)


def import_artifact_content(
    run: Any,
    artifacts: Sequence[Artifact],
    base: Path,
    *,
    since: float | None = None,
    max_seconds: float = MAX_SECONDS,
    stopped: Callable[[], bool] = lambda: False,
) -> None:
    """Read the TensorBoard and W&B ``artifacts`` (found under ``base``) into ``run``:
    only event files written since ``since``, within ``max_seconds`` for all of them,
    and nothing more once ``stopped()`` (the operator cancelled the run: its end must
    not wait on this). Never raises: what cannot be read is a warning of the run."""
    boards = sorted(a.path for a in artifacts if a.kind == "tensorboard")
    wandb_runs = sorted(a.path for a in artifacts if a.kind == "wandb")
    if not boards and not wandb_runs:
        return
    try:
        importer = _Importer(run, base, since, time.monotonic() + max_seconds, stopped)
        importer.tensorboard(boards)
        importer.wandb(wandb_runs)
        importer.params_done()
    except Exception as exc:  # never the pipeline's problem
        logger.debug("otel-tracker artifact import failed", exc_info=True)
        run.record.warn(f"TensorBoard/W&B content not read: {exc}"[:300])


class _Importer:
    def __init__(
        self,
        run: Any,
        base: Path,
        since: float | None,
        deadline: float,
        stopped: Callable[[], bool],
    ) -> None:
        self.run = run
        self.base = base
        self.since = since
        self.deadline = deadline
        self.stopped = stopped
        self.taken = _recorded_keys(run)
        self.params: dict[str, Any] = {}
        self.left_out: list[str] = []

    def _go_on(self, what: Path) -> bool:
        if self.stopped() or time.monotonic() > self.deadline:
            self.left_out.append(self._where(what))
            return False
        return True

    def tensorboard(self, boards: list[Path]) -> None:
        labels = _labels(boards)
        prefixed = len(set(labels.values())) > 1
        hparams: dict[str, dict[str, Any]] = {}
        for board in boards:
            if not self._go_on(board):
                continue
            try:
                content = read_event_dir(board, deadline=self.deadline, since=self.since)
            except MissingExtraError as exc:
                self.run.record.warn(f"TensorBoard scalars of {self._where(board)} not read: {exc}")
                return
            prefix = f"{labels[board]}/" if prefixed else ""
            self._series(content.series, prefix, f"tensorboard:{self._where(board)}")
            for problem in content.problems:
                self.run.record.warn(problem)
            if content.hparams:
                hparams.setdefault(labels[board], {}).update(content.hparams)
        if len(hparams) == 1:
            self.params["tensorboard"] = next(iter(hparams.values()))
        elif hparams:
            self.params["tensorboard"] = hparams

    def wandb(self, runs: list[Path]) -> None:
        ids = {directory: wandb_run_id(directory) for directory in runs}
        prefixed = len(set(ids.values())) > 1
        configs: dict[str, dict[str, Any]] = {}
        # newest first (W&B names its directories by start time): a resumed run's
        # later directory holds its final values, the earlier one's keys are then taken
        for directory in sorted(runs, key=lambda d: d.name, reverse=True):
            if not self._go_on(directory):
                continue
            content = read_wandb_run(directory)
            prefix = f"{content.run_id}/" if prefixed else ""
            self._series(content.series, prefix, f"wandb:{self._where(directory)}")
            for problem in content.problems:
                self.run.record.warn(problem)
            if content.config:
                configs.setdefault(content.run_id, content.config)
        if len(configs) == 1:
            self.params["wandb"] = next(iter(configs.values()))
        elif configs:
            self.params["wandb"] = configs

    def params_done(self) -> None:
        if self.left_out:
            shown = ", ".join(self.left_out[:5]) + (", ..." if len(self.left_out) > 5 else "")
            why = "the run was stopped" if self.stopped() else f"over {MAX_SECONDS:g} s"
            self.run.record.warn(f"TensorBoard/W&B content not read ({why}): {shown}")
        own = self.run.record.params
        clashing = [name for name in self.params if name in own]
        for name in clashing:  # the run's own param of that name stays
            self.run.record.warn(f"{name} params not recorded: the run has a param {name!r}")
            del self.params[name]
        if self.params and len(json.dumps(self.params, default=str)) > MAX_PARAMS_BYTES:
            self.run.record.warn(
                f"TensorBoard/W&B params not recorded: over {MAX_PARAMS_BYTES // 1024} KiB"
            )
            self.params.clear()
        if self.params:
            self.run.log_params(self.params)

    def _series(self, series: dict[str, list[Point]], prefix: str, source: str) -> None:
        wanted = {
            prefix + name: points
            for name, points in sorted(series.items())
            if prefix + name not in self.taken and points
        }  # what the run logged itself (or a directory read before) stays
        if wanted:
            self.taken.update(self.run.import_series(wanted, source=source))

    def _where(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.base))
        except ValueError:
            return str(path)


def _labels(paths: list[Path]) -> dict[Path, str]:
    """Each directory's name relative to what they share (``logs/train`` and
    ``logs/validation`` -> ``train`` and ``validation``). A directory inside another
    (the session folder ``add_hparams`` writes in its writer's) goes by its outer
    one's name, as TensorBoard shows it under it: a timestamp never names a key."""
    outer = outermost(paths)
    if len(outer) < 2:
        names = {p: p.name for p in outer}
    else:
        common = Path(os.path.commonpath([str(p) for p in outer]))
        names = {p: str(p.relative_to(common)) if p != common else p.name for p in outer}
    return {p: next(names[q] for q in outer if p.is_relative_to(q)) for p in paths}


def _recorded_keys(run: Any) -> set[str]:
    """The keys the run and the processes that joined it logged themselves."""
    run.metrics.flush()  # what the wrapper logged is in the summaries
    keys = set(((run.metrics.summary() or {}).get("keys") or {}).keys())
    if run.dir is not None:
        parts, _ = read_parts(Path(run.dir))
        for part in parts:
            logged = part.get("metrics")
            if isinstance(logged, dict) and isinstance(logged.get("keys"), dict):
                keys.update(k for k in logged["keys"] if isinstance(k, str))
    return keys
