"""A wrapped command's process: its own process group, signalled as a group, dying
with the wrapper, and holding the terminal while it runs.

* **Its own process group.** A signal for the command reaches everything it
  started (``sh -c 'sleep 300; echo after'``: ``sh`` *and* ``sleep``), not only the
  direct child.
* **The terminal goes with it.** When the wrapper is the foreground job of its
  terminal, the command's group becomes the foreground group while it runs (as a
  shell does for a job): it can read the terminal (``input()``, ``pdb``), Ctrl-C
  and Ctrl-Z reach all of it at once, and the wrapper takes the terminal back when
  it exits. A command stopped by Ctrl-Z stops the wrapper's job too, and ``fg``
  resumes both.
* **It dies with the wrapper.** ``PR_SET_PDEATHSIG`` (Linux) sends the direct child
  SIGTERM when the wrapper dies, even by SIGKILL; a tiny guard process (``sh``, in
  a session of its own) signals the whole group then: SIGTERM, SIGKILL 5 s later.
  The wrapper disarms the guard once the command has exited normally, so a
  process the command left running on purpose (``server &``) is left alone.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
DEATH_SIGNAL = signal.SIGTERM  # a tracked child gets to finalize its own record
GUARD_GRACE_S = 5
# stdin is a pipe only the wrapper can write: a line disarms it, EOF (the wrapper
# died without disarming it) signals the group; ``$1`` is the group's id
GUARD_SCRIPT = (
    f'read _ || {{ kill -s TERM -- "-$1"; sleep {GUARD_GRACE_S}; kill -s KILL -- "-$1"; }}'
)
# the stops a terminal causes; the wrapper's job stops with them (SIGSTOP is someone's choice)
TERMINAL_STOPS = frozenset(
    s for s in (getattr(signal, n, None) for n in ("SIGTSTP", "SIGTTIN", "SIGTTOU")) if s
)
WAIT_SLICE_S = 0.25  # the longest a signal another thread received waits for its handler
_CANCEL_SIGNALS = frozenset(
    s for s in (getattr(signal, n, None) for n in ("SIGINT", "SIGTERM", "SIGHUP")) if s
)


def _load_prctl() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
        prctl.restype = ctypes.c_int
        prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
        return prctl
    except (OSError, AttributeError):
        return None


def foreground_terminal() -> int | None:
    """An fd of our controlling terminal if this process's group is its foreground
    group (we may hand it on), else ``None``. With ``stty tostop`` our own output
    would stop us while the command held it: then it is not handed on."""
    try:
        fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
    except OSError:
        return None
    try:
        import termios

        if os.tcgetpgrp(fd) == os.getpgrp() and not termios.tcgetattr(fd)[3] & termios.TOSTOP:
            return fd
    except (OSError, ImportError):
        pass
    os.close(fd)
    return None


def _set_foreground(tty: int, pgid: int) -> bool:
    """Make ``pgid`` the terminal's foreground group; from a background group this
    is allowed only with SIGTTOU blocked (else the kernel stops us instead)."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTTOU})
    try:
        os.tcsetpgrp(tty, pgid)
        return True
    except OSError:
        return False
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


class GroupGuard:
    """Signals a process group if this process dies without disarming it first."""

    def __init__(self, pgid: int) -> None:
        self._write: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        read, write = os.pipe()  # not inheritable: only this process holds the write end
        try:
            self._proc = subprocess.Popen(
                ["/bin/sh", "-c", GUARD_SCRIPT, "otel-tracker-guard", str(pgid)],
                stdin=read,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # the terminal's Ctrl-C must not reach it
            )
            self._write = write
        except OSError as exc:
            os.close(write)
            logger.debug("otel-tracker: no guard for process group %s (%s)", pgid, exc)
        finally:
            os.close(read)

    def disarm(self) -> None:
        write, self._write = self._write, None
        if write is None:
            return
        try:
            os.write(write, b"\n")
        except OSError:
            pass
        finally:
            os.close(write)
        if self._proc is not None:
            try:
                self._proc.wait(timeout=GUARD_GRACE_S)
            except subprocess.TimeoutExpired:
                pass


class ChildProcess:
    """One command in its own process group; see the module's docstring."""

    def __init__(
        self,
        command: Sequence[str],
        *,
        env: Mapping[str, str],
        cwd: Path | None = None,
        stdout: Any = subprocess.PIPE,
        stderr: Any = subprocess.PIPE,
    ) -> None:
        self._prctl = _load_prctl()  # before the fork: the child only calls it
        self._parent = os.getpid()
        self._tty = foreground_terminal()
        self.exited = threading.Event()
        self._pidfd: int | None = None  # opened by the first wait slice (-1: none to be had)
        self._poller: Any = None
        try:
            self.proc = subprocess.Popen(
                list(command),
                stdout=stdout,
                stderr=stderr,
                env=dict(env),
                cwd=cwd,
                preexec_fn=self._in_child,  # setpgid, tcsetpgrp and prctl must run in the child
            )
        except BaseException:
            self._close_tty()
            raise
        self.pid = self.proc.pid  # and the group's id
        self._guard = GroupGuard(self.pid)

    def _in_child(self) -> None:
        """Between fork and exec, in the child: no locks, no imports, no logging."""
        os.setpgid(0, 0)
        if self._tty is not None:
            _set_foreground(self._tty, os.getpid())
        if self._prctl is not None:
            self._prctl(PR_SET_PDEATHSIG, DEATH_SIGNAL, 0, 0)
            if os.getppid() != self._parent:  # the wrapper died before prctl took hold
                os.kill(os.getpid(), DEATH_SIGNAL)

    # -- signals -------------------------------------------------------------------------
    def signal(self, signum: int) -> None:
        """Send ``signum`` to the command's whole group (a stopped group is woken up
        to receive a signal that asks it to end, as a shell's ``kill`` does)."""
        try:
            os.killpg(self.pid, signum)
            if signum in _CANCEL_SIGNALS:
                os.killpg(self.pid, signal.SIGCONT)
        except (ProcessLookupError, PermissionError):
            pass  # all gone already

    def kill(self) -> None:
        self.signal(signal.SIGKILL)

    # -- waiting ------------------------------------------------------------------------
    def wait(self) -> int:
        """Wait for the command to exit, following it through terminal stops; its
        return code (``-N``: killed by signal N)."""
        while not self._exited_now():
            pass
        self.exited.set()
        self._guard.disarm()  # before the reap: its group id cannot be reused yet
        if self._pidfd is not None and self._pidfd >= 0:
            os.close(self._pidfd)
        self._pidfd = self._poller = None
        try:
            return self.proc.wait()
        finally:
            self._close_tty()

    def _exited_now(self) -> bool:
        """Block until the command stops or exits; ``True`` once it exited."""
        if not hasattr(os, "waitid"):  # macOS before Python 3.13: stops are not followed
            return True
        while True:
            try:
                info = os.waitid(
                    os.P_PID, self.pid, os.WEXITED | os.WSTOPPED | os.WNOWAIT | os.WNOHANG
                )
            except ChildProcessError:
                return True  # reaped already
            if info is not None:
                break
            self._nap()
        if info.si_code not in (os.CLD_STOPPED, os.CLD_TRAPPED):
            return True
        # consume this stop's report (no WEXITED: this cannot reap the child)
        os.waitid(os.P_PID, self.pid, os.WSTOPPED | os.WNOHANG)
        if info.si_status in TERMINAL_STOPS:
            self._follow_stop()
        return False

    def _nap(self) -> None:
        """Wait until the command exits, or :data:`WAIT_SLICE_S` at most.

        Never one blocking wait for the whole command: the kernel may hand Ctrl-C to
        any of the wrapper's threads, and Python runs the handler only when the main
        thread runs again. A blocking ``waitid`` would hold the forwarding of that
        signal until the command exited by itself; here it waits a slice at most.
        """
        if self._pidfd is None and hasattr(os, "pidfd_open") and hasattr(select, "poll"):
            try:
                self._pidfd = os.pidfd_open(self.pid)
                # poll, not select: a wrapper holding 1,024 descriptors or more is fine
                self._poller = select.poll()
                self._poller.register(self._pidfd, select.POLLIN)
            except OSError:  # an old kernel: plain slices
                self._pidfd = -1
        if self._poller is not None and self._pidfd is not None and self._pidfd >= 0:
            self._poller.poll(WAIT_SLICE_S * 1000)  # readable: it exited
        else:
            time.sleep(WAIT_SLICE_S / 5)

    def _follow_stop(self) -> None:
        """The command's group was stopped from the terminal: stop our job too, the
        way a shell reports a stopped job, and resume the command when we resume.
        (A process group without job control ignores SIGTSTP: we go on at once.)"""
        if self._tty is not None:
            _set_foreground(self._tty, os.getpgrp())
        os.killpg(os.getpgrp(), signal.SIGTSTP)
        if self._tty is not None:
            _set_foreground(self._tty, self.pid)
        elif (tty := foreground_terminal()) is not None:
            self._tty = tty  # continued in the foreground: the command may have it now
            _set_foreground(tty, self.pid)
        else:
            return  # still in the background: it would only stop again on the terminal
        self.signal(signal.SIGCONT)

    def _close_tty(self) -> None:
        tty, self._tty = self._tty, None
        if tty is None:
            return
        _set_foreground(tty, os.getpgrp())
        with contextlib.suppress(OSError):
            os.close(tty)
