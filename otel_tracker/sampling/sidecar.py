"""Process, system and GPU sampling in a helper process, one pipe round trip a sample.

Why a process: psutil reads /proc with Python file I/O, and every read gives up
the GIL and must win it back from the pipeline's busy main thread. Measured on
the reference pipeline's rollout loop (2 vCPUs): one sample in a thread took
3.9 s of wall time and 0.3 s of CPU, and a 0.5 s interval slowed the pipeline
by 20-25%; the same samplers in a helper process slowed it by nothing
measurable. Here the pipeline's process sends one request line and reads one
reply line per sample. A due heartbeat of the run's manifest rides along with
the request (its bytes follow the line) and the helper writes it: see
``otel_tracker/contract/heartbeat.py`` for why and how it never lands over newer state.

The helper runs in a session of its own and ignores SIGINT/SIGTERM (a terminal's
Ctrl-C goes to the whole foreground process group; the run ends the helper). The
run's end sends it a stop line: its stdin's end of file cannot be the signal,
because every forked child of the pipeline (a DataLoader or Pool worker) holds a
copy of our end of the pipe. If this process dies instead, the kernel kills the
helper at once (``PR_SET_PDEATHSIG`` on Linux, when the main thread started it:
the signal follows the thread that forked the helper, and only the main thread
lives as long as the process); else it notices at end of file or, with a forked
child holding the pipe, by its parent pid changing within a second.
If it cannot start or stops answering, sampling falls back to the same samplers
in the calling thread, with one warning.
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .local import local_samplers
from .pipe import LineReader, write_all
from .points import Point, Unavailable, merged_details

logger = logging.getLogger(__name__)

REPLY_TIMEOUT_S = 10.0
FIRST_REPLY_FACTOR = 3  # the first waits for interpreter start, psutil, nvmlInit on a big box
# The pipeline's main thread (a step's end sample) waits no longer than this: a signal
# that arrives meanwhile is handled only once it is done (see signals.py).
MAIN_THREAD_REPLY_TIMEOUT_S = 1.0
# How long the run's end waits for the helper to exit after the stop line (it takes
# milliseconds; a helper that does not is killed).
STOP_WAIT_S = 1.0
# How often the helper checks its parent pid where no parent-death signal is set.
PARENT_POLL_S = 1.0
STOP_REQUEST = b'{"stop":true}\n'
PR_SET_PDEATHSIG = 1
LocalSamplers = Callable[[], Sequence[tuple[str, Any]]]


class SubprocessSampler:
    """The process-tree, system and GPU samplers behind one helper process.

    A sampler for :class:`~otel_tracker.sampling.sampler.ResourceSampler`
    (``sample(now, unavailable)`` and ``details()``).
    """

    def __init__(
        self,
        *,
        pid: int | None = None,
        root: int | None = None,
        command: Sequence[str] | None = None,
        fallback: LocalSamplers | None = None,
        reply_timeout: float = REPLY_TIMEOUT_S,
    ) -> None:
        self.pid = os.getpid() if pid is None else pid
        # the process tree sampled: ours, or a launcher's with all of a host's ranks
        self.root = root
        self._command = list(command or helper_command())
        self._fallback = fallback or (lambda: local_samplers(root))
        self.reply_timeout = reply_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self.helper_pid: int | None = None
        self._reader: LineReader | None = None
        self._local: list[tuple[str, Any]] | None = None
        self._replies = 0
        self._details: dict[str, Any] = {}
        self.helper_cpu_s = 0.0
        self.fallback_reason: str | None = None
        # one request at a time on the pipe: the sampler thread and a step's end both send
        self._io = threading.Lock()
        self._heartbeat: bytes | None = None  # header line and manifest, sent with the next request
        self._heartbeat_failed: Callable[[OSError], None] | None = None
        self._closed = False
        # how the helper ended: its exit status, and whether it had to be killed
        self.returncode: int | None = None
        self.killed = False

    @property
    def mode(self) -> str:
        return "thread" if self._local is not None else "subprocess"

    def start(self) -> None:
        """Launch the helper (returns at once; the first sample waits for it)."""
        try:
            self._proc = subprocess.Popen(
                self._command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                close_fds=True,
                # its own session: a terminal's Ctrl-C to our process group never reaches
                # it, not even while it starts; it ends when our end of its stdin closes
                start_new_session=True,
            )
            self.helper_pid = self._proc.pid
            assert self._proc.stdin is not None
            # parent-death signalling follows the thread that forked the helper: only the
            # main thread is sure to live as long as this process
            first = {
                "pid": self.pid,
                "pdeathsig": threading.current_thread() is threading.main_thread(),
            }
            if self.root is not None:
                first["root"] = self.root
            self._proc.stdin.write(json.dumps(first).encode() + b"\n")
            self._proc.stdin.flush()
            # a helper that stopped reading must not block us on a full pipe: see write_all
            os.set_blocking(self._proc.stdin.fileno(), False)
        except Exception as exc:
            self._fall_back(f"could not start the sampling helper: {exc}")

    def sample(self, now: float, unavailable: Unavailable) -> list[Point]:
        if self._closed:
            return []  # a late caller after close(): no helper, and no fallback either
        if self._local is None:
            try:
                reply = self._ask(now)
            except Exception as exc:
                if self._closed:
                    return []  # closed (killed) under this sample at the run's end
                self._fall_back(f"the sampling helper failed: {type(exc).__name__}: {exc}")
            else:
                for what, reason in reply.get("unavailable", {}).items():
                    unavailable.note(what, reason)
                self._details = reply.get("details", {})
                self.helper_cpu_s = float(reply.get("cpu_s", 0.0))
                return [_point(p) for p in reply["points"]]
        points: list[Point] = []
        for _, sampler in self._local or ():
            points += sampler.sample(now, unavailable)
        return points

    def heartbeat(
        self,
        manifest: Path,
        payload: tuple[int, bytes],
        *,
        send_now: bool,
        on_error: Callable[[OSError], None],
    ) -> bool:
        """Have the helper write a heartbeat of ``manifest`` (``payload`` from
        :meth:`ManifestFileWriter.heartbeat_payload`): with the next sample's request,
        or at once. ``False`` if there is no helper to do it: write it yourself."""
        generation, data = payload
        header = {
            "heartbeat": {"path": str(manifest), "generation": generation, "bytes": len(data)}
        }
        with self._io:
            if self._proc is None or self._local is not None:
                return False
            self._heartbeat = json.dumps(header).encode() + b"\n" + data
            self._heartbeat_failed = on_error
            if not send_now:
                return True
            try:
                self._send(b"")  # the heartbeat alone: the helper does not reply
            except Exception as exc:
                self._fall_back(f"the sampling helper failed: {type(exc).__name__}: {exc}")
                return False
        return True

    def details(self) -> dict[str, Any]:
        """``telemetry.processes`` and how sampling ran (``telemetry.sampler``)."""
        found = merged_details(self._local) if self._local is not None else dict(self._details)
        found["sampler"] = {
            "mode": self.mode,
            "helper_pid": self.helper_pid,
            "helper_cpu_s": round(self.helper_cpu_s, 6),
            **({"fallback_reason": self.fallback_reason} if self.fallback_reason else {}),
        }
        return found

    def close(self, kill: bool = False) -> None:
        """Stop the helper (it also exits by itself when this process dies); ``kill``
        when it does not answer: no waiting for it to read its end of input."""
        self._closed = True
        self._end_helper(kill=kill)

    def _ask(self, now: float) -> dict[str, Any]:
        with self._io:
            proc = self._proc
            if proc is None or proc.stdout is None:
                raise RuntimeError("not running")
            self._send(json.dumps({"now": now}).encode() + b"\n")
            timeout = self.reply_timeout * (FIRST_REPLY_FACTOR if self._replies == 0 else 1)
            if threading.current_thread() is threading.main_thread():
                timeout = min(timeout, MAIN_THREAD_REPLY_TIMEOUT_S)
            if self._reader is None:
                self._reader = LineReader(proc.stdout.fileno())
            line = self._reader.readline(timeout)
            if line is None:
                raise TimeoutError(f"no reply within {timeout:g}s")
            if not line:
                raise RuntimeError(f"it exited (code {proc.poll()})")
            self._replies += 1
            reply = json.loads(line)
            failed = reply.get("heartbeat_error")
            if failed and self._heartbeat_failed is not None:
                self._heartbeat_failed(OSError(failed[0], failed[1]))
            if "error" in reply:
                raise RuntimeError(reply["error"])
            return reply

    def _send(self, request: bytes) -> None:
        """One ``write()`` for the pending heartbeat and ``request`` (each system call
        of a tracker thread costs the pipeline a GIL hand-off)."""
        proc = self._proc
        if proc is None or proc.stdin is None:
            raise RuntimeError("not running")
        if self._heartbeat is not None:
            request, self._heartbeat = self._heartbeat + request, None
        write_all(proc.stdin.fileno(), request, self.reply_timeout)

    def _fall_back(self, reason: str) -> None:
        if self._local is not None:
            return  # the other thread saw the same failure first
        logger.warning("otel-tracker %s; sampling in this process instead", reason)
        self.fallback_reason = reason
        self._end_helper(kill=True)
        self._local = list(self._fallback())

    def _end_helper(self, kill: bool) -> None:
        """Tell the helper to stop and reap it; kill it if it does not exit at once.

        Not end of file: a forked child of this process (a DataLoader or Pool worker)
        holds a copy of our end of its stdin, so the helper would see none."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            if kill or not self._io.acquire(timeout=STOP_WAIT_S):
                raise TimeoutError("no stop line: kill it")
            try:  # a whole line, never inside another request
                if proc.stdin is not None:
                    write_all(proc.stdin.fileno(), STOP_REQUEST, STOP_WAIT_S)
            finally:
                self._io.release()
            proc.wait(timeout=STOP_WAIT_S)
        except Exception:
            self.killed = True
            proc.kill()
            try:
                proc.wait(timeout=STOP_WAIT_S)
            except Exception:
                pass
        self.returncode = proc.returncode
        for pipe in (proc.stdin, proc.stdout):
            try:
                if pipe is not None:
                    pipe.close()
            except OSError:
                pass


def helper_command() -> list[str]:
    """This interpreter running :func:`main`, finding this package even if not installed."""
    package_parent = str(Path(__file__).resolve().parents[2])
    code = (
        f"import sys; sys.path.append({package_parent!r}); "
        "from otel_tracker.sampling.sidecar import main; raise SystemExit(main())"
    )
    return [sys.executable, "-c", code]


def _point(raw: Sequence[Any]) -> Point:
    name, value, unit, attributes, monotonic, summarize = raw
    return Point(name, value, unit, tuple((k, v) for k, v in attributes), monotonic, summarize)


def _encode(point: Point) -> list[Any]:
    return [
        point.name,
        point.value,
        point.unit,
        [list(a) for a in point.attributes],
        point.monotonic,
        point.summarize,
    ]


def serve(lines: LineReader, stdout: Any, parent: int, samplers: Sequence[tuple[str, Any]]) -> int:
    """The helper's loop: one reply line per request line that asks for a sample
    (``"now"``), a heartbeat written for one that carries it, until stdin closes."""
    from ..contract.heartbeat import HeartbeatCommitter

    unavailable = Unavailable()
    heartbeats = HeartbeatCommitter()
    heartbeat_error: list[Any] | None = None
    while True:
        line = lines.readline(PARENT_POLL_S)
        if line is None:
            # the parent may die with a forked worker still holding our stdin open
            if os.getppid() != parent:
                return 0
            continue
        if not line:
            return 0
        try:
            request = json.loads(line)
            if request.get("stop"):
                return 0
            beat = request.get("heartbeat")
            if beat is not None:
                data = lines.read(int(beat["bytes"]), REPLY_TIMEOUT_S)
                if data is None:
                    return 0  # our parent died in the middle of a request
                try:
                    heartbeats.write(Path(beat["path"]), int(beat["generation"]), data)
                except OSError as exc:
                    heartbeat_error = [exc.errno or 0, str(exc)]
                if "now" not in request:
                    continue  # a heartbeat alone gets no reply
            now = float(request.get("now", time.monotonic()))
            points: list[Point] = []
            for name, sampler in samplers:
                try:
                    points += sampler.sample(now, unavailable)
                except Exception as exc:
                    unavailable.note(name, f"sampling failed: {type(exc).__name__}: {exc}")
            reply = {
                "points": [_encode(p) for p in points],
                "unavailable": dict(unavailable),
                "details": merged_details(samplers),
                "cpu_s": time.process_time(),
            }
            if heartbeat_error is not None:
                reply["heartbeat_error"], heartbeat_error = heartbeat_error, None
        except Exception as exc:  # a bad request: say so, keep serving
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        stdout.write(json.dumps(reply, separators=(",", ":")).encode() + b"\n")
        stdout.flush()


def main() -> int:
    """``python -m otel_tracker.sampling.sidecar``: first line ``{"pid": N}``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    lines, stdout = LineReader(sys.stdin.fileno()), sys.stdout.buffer
    first = lines.readline(None)
    if not first:
        return 0
    try:
        hello = json.loads(first)
        parent = int(hello["pid"])
        if hello.get("pdeathsig"):
            die_with_parent()
        if os.getppid() != parent:
            return 0  # it died before we could ask to be told
        root = int(hello.get("root") or parent)
        samplers = local_samplers(root, exclude=frozenset({os.getpid()}))
    except Exception as exc:
        stdout.write(json.dumps({"error": f"{type(exc).__name__}: {exc}"}).encode() + b"\n")
        stdout.flush()
        return 1
    return serve(lines, stdout, parent, samplers)


def die_with_parent() -> bool:
    """Have the kernel kill this process when the thread that forked it ends (Linux);
    whether it will. The caller checks its parent pid afterwards: it may be gone."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


if __name__ == "__main__":
    raise SystemExit(main())
