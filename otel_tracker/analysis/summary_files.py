"""The summary a run leaves in its directory when it ends (or is recovered):
``summary.json``, ``summary.md`` and ``summary.txt``, the same report in three forms."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ..contract.atomic import write_text_atomic

logger = logging.getLogger(__name__)
SUMMARY_FILES = ("summary.json", "summary.md", "summary.txt")


def write_summary_files(run_dir: Path, store: Any) -> list[Path]:
    """Analyze the run in ``run_dir`` and write its three summaries; returns their paths.

    Raises what reading or writing raises: callers on the write side catch it, since
    a summary must never fail the run it describes.
    """
    from .recommend import analyze
    from .render import to_text
    from .report import build_report, to_json, to_markdown

    view = store.load(run_dir)
    report = build_report(view, analyze(view.doc, root=store.root, store=store))
    paths = []
    for name, text in zip(
        SUMMARY_FILES, (to_json(report), to_markdown(report), to_text(report)), strict=True
    ):
        path = run_dir / name
        write_text_atomic(path, text)
        paths.append(path)
    return paths


def write_summary_quietly(run_dir: Path, root: Path) -> None:
    """:func:`write_summary_files` for a run that is ending: failures are logged, never raised."""
    from ..config import ReaderConfig
    from ..history.store import RunStore

    try:
        write_summary_files(run_dir, RunStore(config=ReaderConfig.resolve(root=root)))
    except Exception as exc:
        logger.warning("otel-tracker could not write the summary files of %s: %s", run_dir, exc)
