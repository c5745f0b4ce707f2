"""What a command's own TensorBoard event files hold: its scalars (as series) and
its hparams, read with TensorBoard's own reader (imported here, lazily).

Bounded: a deadline for all of a run's files, and at most :data:`MAX_POINTS` points
kept per tag (evenly thinned, the last point kept), as TensorBoard's own scalar
dashboard samples a tag to 1,000.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import MissingExtraError

logger = logging.getLogger(__name__)

EVENTS_PREFIX = "events.out.tfevents."
MAX_POINTS = 10_000
MAX_FILES = 100  # per event directory
MAX_TAGS = 1_000  # per event directory: as many keys as a run records
Point = tuple[int, float, float | None]  # step, value, unix time


@dataclass
class EventDirContent:
    """The scalars and hparams of one event directory, and what went wrong reading it."""

    series: dict[str, list[Point]] = field(default_factory=dict)
    hparams: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    thinned: int = 0  # tags with more points than were kept
    tags_left_out: int = 0  # scalars of tags beyond MAX_TAGS


class ThinnedPoints:
    """At most ``limit`` points spread evenly over everything appended, the last one
    included: when full, every other point goes and only every second later one is
    kept, so memory stays bounded however long the series."""

    def __init__(self, limit: int = MAX_POINTS) -> None:
        self.limit = max(2, limit)
        self.points: list[Point] = []
        self.last: Point | None = None
        self.seen = 0
        self._stride = 1

    def append(self, point: Point) -> None:
        if self.seen % self._stride == 0:
            if len(self.points) >= self.limit - 1:  # room for the last point
                del self.points[1::2]
                self._stride *= 2
            if self.seen % self._stride == 0:
                self.points.append(point)
        self.last = point
        self.seen += 1

    def kept(self) -> list[Point]:
        if self.last is not None and (not self.points or self.points[-1] is not self.last):
            return [*self.points, self.last]
        return list(self.points)


def read_event_dir(
    directory: Path, *, deadline: float, since: float | None = None
) -> EventDirContent:
    """The scalars and hparams of the event files directly in ``directory`` (the
    files of a restarted writer in name order, which is time order), only those
    written since ``since`` (a rerun writing into the same directory leaves the
    earlier runs' files there: those are not this run's). Raises
    :class:`MissingExtraError` when TensorBoard is not installed."""
    loader_module, make_ndarray, hparams_data = _reader()
    content = EventDirContent()
    series: dict[str, ThinnedPoints] = {}
    try:
        files = sorted(
            p
            for p in directory.iterdir()
            if p.name.startswith(EVENTS_PREFIX) and _regular(p) and _recent(p, since)
        )
    except OSError as exc:
        content.problems.append(f"TensorBoard events in {directory} not read: {exc}")
        return content
    if len(files) > MAX_FILES:
        content.problems.append(f"only the last {MAX_FILES} event files of {directory} were read")
        files = files[-MAX_FILES:]
    for path in files:
        try:
            for event in loader_module.EventFileLoader(str(path)).Load():
                if time.monotonic() > deadline:
                    content.problems.append(
                        f"TensorBoard events in {directory} read in part: out of time"
                    )
                    return _finish(content, series)
                if event.HasField("summary"):
                    _take(event, series, content, make_ndarray, hparams_data)
        except Exception as exc:  # a torn or foreign file: what was read so far stays
            content.problems.append(f"TensorBoard events in {path} read in part: {exc}"[:300])
    return _finish(content, series)


def _take(
    event: Any,
    series: dict[str, ThinnedPoints],
    content: EventDirContent,
    make_ndarray: Any,
    hparams_data: Any,
) -> None:
    for value in event.summary.value:
        plugin = value.metadata.plugin_data.plugin_name
        if plugin == "scalars":
            try:
                number = _number(make_ndarray(value.tensor))
            except (ValueError, TypeError):
                continue  # not one number: not a scalar we can show
            points = series.get(value.tag)
            if points is None:
                if len(series) >= MAX_TAGS:  # memory stays bounded whatever the file holds
                    content.tags_left_out += 1
                    continue
                points = series[value.tag] = ThinnedPoints()
            wall = event.wall_time if math.isfinite(event.wall_time) else None
            points.append((int(event.step), number, wall))
        elif plugin == "hparams" and hparams_data is not None:
            content.hparams.update(_hparams(value.metadata.plugin_data.content, hparams_data))


def _number(array: Any) -> float:
    """One scalar as the writer meant it: a float32 as its shortest text (``0.1``, not
    the ``0.10000000149011612`` a double makes of it)."""
    scalar = array.reshape(())  # ValueError unless exactly one value
    if scalar.dtype.kind == "f" and scalar.dtype.itemsize < 8:
        return float(str(scalar))
    return float(scalar.item())


def _hparams(raw: bytes, hparams_data: Any) -> dict[str, Any]:
    """The hyperparameters of a session-start record (what ``add_hparams`` writes)."""
    data = hparams_data.HParamsPluginData()
    try:
        data.ParseFromString(raw)
    except Exception:
        return {}
    if not data.HasField("session_start_info"):
        return {}
    out: dict[str, Any] = {}
    for name, value in data.session_start_info.hparams.items():
        kind = value.WhichOneof("kind")
        if kind in ("number_value", "string_value", "bool_value"):
            out[name] = getattr(value, kind)
    return out


def _finish(content: EventDirContent, series: dict[str, ThinnedPoints]) -> EventDirContent:
    if content.tags_left_out:
        content.problems.append(
            f"TensorBoard events: only the first {MAX_TAGS:,} tags were read; "
            f"{content.tags_left_out:,} scalars of later ones left out"
        )
    for tag, points in series.items():
        content.series[tag] = points.kept()
        if points.seen > len(content.series[tag]):
            content.thinned += 1
    return content


def _regular(path: Path) -> bool:
    # never a link: the file must be one the command wrote here
    return not path.is_symlink() and path.is_file()


def _recent(path: Path, since: float | None) -> bool:
    try:  # coarse filesystem timestamps: a second's slack, as the artifact scan
        return since is None or path.stat().st_mtime >= since - 1.0
    except OSError:
        return False


def _reader() -> tuple[Any, Any, Any]:
    try:
        from tensorboard.backend.event_processing import event_file_loader
        from tensorboard.util.tensor_util import make_ndarray
    except ImportError as exc:
        raise MissingExtraError(
            "tensorboard", "tensorboard", "reading TensorBoard event files"
        ) from exc
    try:
        from tensorboard.plugins.hparams import plugin_data_pb2
    except ImportError:  # an older TensorBoard: scalars only
        plugin_data_pb2 = None
    return event_file_loader, make_ndarray, plugin_data_pb2
