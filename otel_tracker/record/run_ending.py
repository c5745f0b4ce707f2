"""How a :class:`~otel_tracker.record.run.Run` ends: by its ``with`` block, by ``end()``, by a
signal or at the interpreter's exit; once, with a final record written before any
(bounded) exporter shutdown."""

from __future__ import annotations

import atexit
import logging
import sys
import time

from .. import semconv
from ..exporters.handoff import forward_part_spans
from ..exporters.shutdown import shut_down_by
from .after_run import after_run_commands, spawn_detached
from .signals import signal_name
from .step import mark_error, outcome_of

logger = logging.getLogger(__name__)


class RunEnding:
    """The ways :class:`~otel_tracker.record.run.Run` ends (a base class of it);
    it uses the state the opening phases set."""

    def end(self, error: BaseException | None = None) -> None:
        """End the run: completed, or as ``error`` dictates (see :func:`outcome_of`)."""
        result, exit_code, sig = outcome_of(error)
        self._finish(result, exit_code, sig or self._pending_signal, error)

    def end_with_signal(self, signum: int, forwarded: bool = False) -> None:
        """End the run as ended by signal ``signum`` (a wrapped command killed by it).

        SIGINT, SIGTERM and SIGHUP mean ``cancelled``; any other signal ``failed``.
        """
        name = signal_name(signum)
        cancelled = name in ("SIGINT", "SIGTERM", "SIGHUP")
        result = semconv.RESULT_CANCELLATION if cancelled else semconv.RESULT_FAILURE
        how = "forwarded to the command" if forwarded else "received by the command"
        self._finish(result, 128 + signum, name, None, f"{name} {how}")

    def _finish(
        self,
        result: str,
        exit_code: int | None,
        sig: str | None,
        error: BaseException | None,
        reason: str | None = None,
    ) -> None:
        if self._in_fork_child():
            return
        with self._deferring:
            self._finish_once(result, exit_code, sig, error, reason)
        if self._signals is not None and self._steps.ended:
            # only now: a fatal signal held while the run ended still reaches
            # _on_signal, which records that it ended the process
            self._signals.unregister(self._on_signal)

    def _finish_once(
        self,
        result: str,
        exit_code: int | None,
        sig: str | None,
        error: BaseException | None,
        reason: str | None,
    ) -> None:
        if not self._steps.close():
            return
        # one budget for the whole end: a dead endpoint may delay the exit by
        # export_timeout, not export_timeout plus the final sample and writes
        deadline = time.monotonic() + self.config.export_timeout
        try:
            self._stop_heartbeat.set()
            # every point logged so far reaches metrics.jsonl and the final summary,
            # and the final sample's gauge of the latest values (so: before it)
            self.metrics.close(timeout=max(0.5, deadline - time.monotonic()))
            problem = self.telemetry.stop()
            if problem:
                self.record.warn(problem)
            self._steps.end_running(result, reason)
            span = self._span
            span.set_attribute(semconv.CICD_PIPELINE_RESULT, result)
            if exit_code is not None:
                span.set_attribute(semconv.PROCESS_EXIT_CODE, exit_code)
            if sig:
                span.set_attribute(semconv.RUN_SIGNAL, sig)
            mark_error(span, result, error, reason, exit_code)
            span.end(end_time=self._anchored.now_ns())
            # a joined child's steps are in the launcher's summary, written when it ends
            reports = self.join is None and self.config.summary_files and self._report
            if self.dir is not None and reports:
                self._report(self.dir)
        finally:
            self.reporter.stop()
            if self._lock is not None:
                self._lock.release()
            if self.join is None:  # after the release: the run is no longer live
                self._after_run()
            atexit.unregister(self._at_exit)
            if self.join is None and self.dir is not None:  # what joined children handed over
                forward_part_spans(self.mirrors, self.dir)
            self._shutdown_exporters(deadline)

    def _after_run(self) -> None:
        """Pack the run's telemetry and apply retention, in a process of its own
        (:mod:`.after_run`): the exit waits for none of it."""
        config = self.config
        pack = (config.telemetry_window, config.telemetry_rollup)
        try:
            run_dir = self.absolute_dir
            commands = after_run_commands(
                run_dir.parent if run_dir is not None else config.root.absolute(),
                run_dir,
                pack=pack if config.pack_telemetry else None,
                retention=self._retention,
            )
            spawn_detached(commands)
        except Exception as exc:
            logger.warning("otel-tracker: telemetry packing and retention not started: %s", exc)

    def _shutdown_exporters(self, deadline: float) -> None:
        """Flush and shut down every exporter until ``deadline`` (the manifest is
        already final): a dead endpoint must not hold the process hostage."""
        # side by side: spans must not wait behind a metric export stuck on a dead endpoint
        stuck = not shut_down_by(
            deadline,
            spans=(self._provider.shutdown,),
            metrics=(self.telemetry.shutdown, self.mirrors.close),
        )
        reported = None
        if self.mirrors.guards:
            reported = self.mirrors.report(self.config.export_timeout if stuck else None)
            if reported:
                self.record.warn(reported)
            self.record.tracker["mirrors"] = self.mirrors.summary()
            self.manifest_processor.write()
        if stuck and not reported:
            logger.warning(
                "otel-tracker exporters did not finish within %.1fs; unsent telemetry was dropped",
                self.config.export_timeout,
            )

    def _heartbeat_loop(self) -> None:
        # Without resource sampling only (else the sampler thread beats, see heartbeat.py).
        # No fsync: each system call of this thread must win the GIL back from the
        # pipeline (benchmarks/bench_interference.py), and a heartbeat changes no state.
        while not self._stop_heartbeat.wait(self.config.heartbeat_interval):
            if self._in_fork_child():
                return
            self.manifest_processor.write(durable=False)

    def _on_signal(self, signum: int, fatal: bool) -> None:
        name = signal_name(signum)
        if self._steps.ended:
            if fatal:
                self._ended_by(signum)
            return
        self._pending_signal = name
        try:
            self._span.add_event("signal", {"signal": name})
        except Exception:
            pass
        if fatal:
            reason = f"interrupted by {name}"
            self._finish(semconv.RESULT_CANCELLATION, 128 + signum, name, None, reason)

    def _ended_by(self, signum: int) -> None:
        """A fatal signal arrived while this run was ending (say, after Ctrl-C) and
        ends the process: the record says so, not the outcome it predicted."""
        name = signal_name(signum)
        with self.record.lock:
            if self.record.signal == name or self.record.ended_ns is None:
                return
            before = self.record.signal or f"exit code {self.record.exit_code}"
            self.record.exit_code, self.record.signal = 128 + signum, name
        self.record.warn(f"{name} ended the process while the run was ending (after {before})")
        self.manifest_processor.write()

    def _at_exit(self) -> None:
        """The interpreter is exiting with the run still open."""
        if self._steps.ended or self._in_fork_child():
            return
        last = getattr(sys, "last_value", None)
        if isinstance(last, BaseException):
            self.end(last)
            return
        self.record.warn("run was not ended explicitly; it was closed at interpreter exit")
        self.end(None)
