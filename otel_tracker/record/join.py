"""Joining a launcher's run: which run, under which span, in which part file.

``otel-tracker run`` and ``pipeline run`` put ``OTEL_TRACKER_RUN_DIR`` and the W3C
``TRACEPARENT`` of the launching step into the child's environment. A
``track_run`` in that child joins the run instead of starting its own: same run
id and trace, its own part file (see :mod:`otel_tracker.contract.parts`). A run
directory that is not a live run (a stale variable left in a shell, a finished
run, a typo) is ignored with one warning, and the process is tracked on its own.

The launcher samples the whole process tree and serves the run's Prometheus and
TensorBoard mirrors; when it mirrors to OTLP, the child hands its spans to it
(see :mod:`otel_tracker.exporters.handoff`) instead of exporting them itself.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..contract.jsonfile import FileProblem, read_json
from ..contract.parts import MAX_PART_BYTES, PARTS_DIR
from ..contract.paths import MANIFEST_NAME, RUN_DIR_ENV

if TYPE_CHECKING:
    from ..config import MirrorConfig

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class JoinTarget:
    """The run this process joins and where its own record goes."""

    run_dir: Path
    run_id: str
    parent_span_id: str | None
    part_id: str
    launcher_otlp: bool = False  # the launching run mirrors to OTLP: it takes our spans

    @property
    def part_path(self) -> Path:
        return self.run_dir / PARTS_DIR / f"{self.part_id}.json"

    @property
    def metrics_path(self) -> Path:
        """Where this process's metric series go (the launcher's are ``metrics.jsonl``)."""
        return self.run_dir / PARTS_DIR / f"{self.part_id}.metrics.jsonl"

    @property
    def spans_path(self) -> Path:
        from ..exporters.handoff import SPANS_SUFFIX

        return self.run_dir / PARTS_DIR / f"{self.part_id}{SPANS_SUFFIX}"

    def mirror_config(self, mirrors: MirrorConfig) -> MirrorConfig:
        """Ours, less what the launcher does for the whole run."""
        return dataclasses.replace(
            mirrors,
            prometheus=False,
            tensorboard=False,
            otlp=mirrors.otlp and not self.launcher_otlp,
        )

    def span_handoff(self, mirrors: MirrorConfig) -> list[Any]:
        """The processor that hands our spans to the launcher, if we mirror to OTLP
        and it does too (``[]`` otherwise, or if the file cannot be created)."""
        if not (mirrors.otlp and self.launcher_otlp):
            return []
        from ..exporters.handoff import SpanHandoffProcessor

        try:
            return [SpanHandoffProcessor(self.spans_path)]
        except OSError as exc:
            logger.warning(
                "otel-tracker cannot hand spans to the launching run (%s); they are not mirrored",
                exc,
            )
            return []

    @property
    def lock_name(self) -> str:
        return f".{self.part_id}.lock"


def _span_id(traceparent: str | None) -> str | None:
    # version-traceid-spanid-flags, as the W3C trace-context spec writes it
    fields = (traceparent or "").strip().split("-")
    if len(fields) >= 4 and len(fields[2]) == 16:
        try:
            int(fields[2], 16)
        except ValueError:
            return None
        return fields[2].lower()
    return None


def new_part_id() -> str:
    """Sortable by start time, unique per process: ``<UTC stamp>-<pid>-<random>``."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%f")[:-3]
    return f"{stamp}Z-{os.getpid()}-{secrets.token_hex(3)}"


def join_target(environ: Mapping[str, str], enabled: bool = True) -> JoinTarget | None:
    """The launcher's run named in ``environ``, if it is a live run this process can join."""
    raw = environ.get(RUN_DIR_ENV)
    if not raw or not enabled:
        return None
    run_dir = Path(raw)
    try:
        # bounded, never blocking on a FIFO: the reader's way in (see jsonfile)
        doc = read_json(run_dir / MANIFEST_NAME, 4 * MAX_PART_BYTES)
        run_id = doc["run_id"]
        status = doc["status"]
        if not isinstance(run_id, str) or not run_id:
            raise ValueError("no run_id")
    except (FileProblem, KeyError, TypeError, ValueError) as exc:
        logger.warning(
            "otel-tracker %s=%s is not a run directory (%s); this run is tracked on its own",
            RUN_DIR_ENV,
            raw,
            exc,
        )
        return None
    if status != "running":
        logger.warning(
            "otel-tracker %s=%s names a run that is %s; this run is tracked on its own",
            RUN_DIR_ENV,
            raw,
            status,
        )
        return None
    try:
        (run_dir / PARTS_DIR).mkdir(exist_ok=True)
    except OSError as exc:
        logger.warning(
            "otel-tracker cannot write into %s (%s); this run is tracked on its own", raw, exc
        )
        return None
    tracker = doc.get("tracker") if isinstance(doc.get("tracker"), dict) else {}
    mirrors = tracker.get("mirrors")
    return JoinTarget(
        run_dir,
        run_id,
        _span_id(environ.get("TRACEPARENT")),
        new_part_id(),
        launcher_otlp=isinstance(mirrors, dict) and isinstance(mirrors.get("otlp"), dict),
    )
