"""The run and step active now: this task's or thread's innermost, else the process's.

Code on a plain thread uses plain lists, not ``contextvars``: while any context
variable is set, every lookup of a variable that is *not* set walks the context's
HAMT instead of returning at once, and numpy 2 looks one up on every ufunc call.
Two variables set by a run made small-array numpy code 2-4% slower (callgrind:
+2.0% instructions, all in ``_PyHamt_Find``); plain lists cost nothing between calls.

asyncio tasks interleave on one thread, so a thread's list would credit every
task's ``current_step().advance()`` to the step entered last. A step or run
entered in a running event loop (or in a context that already tracks one, such as
``asyncio.to_thread``'s copy) is therefore held in a context variable, which each
task has its own copy of (tasks created inside a step inherit it). Only async code
pays the lookup cost above, and only while its step runs (benchmarks/bench_current.py).

A thread or task that entered nothing sees the process's innermost one, so worker
threads (data loaders, thread pools) can call ``current_step().advance()`` too.
"""

from __future__ import annotations

import sys
import threading
from contextvars import ContextVar, Token
from typing import Any

_local = threading.local()
# list.append and list.remove are atomic under the GIL (Run and Step compare by
# identity), so no lock: a lock held across a fork would deadlock the child.
_process: dict[str, list[Any]] = {"run": [], "step": []}
# innermost last, as immutable tuples: a task's copy never changes under another task
_context: dict[str, ContextVar[tuple[Any, ...]]] = {
    "run": ContextVar("otel_tracker_runs"),
    "step": ContextVar("otel_tracker_steps"),
}
# set for good once a run or step is held in a context variable: until then (a
# process without asyncio steps) active() does not look the variables up
_used_in_context = False
# What enter_local returns for leave_local: this thread's stack, or the variable's token.
LocalToken = list[Any] | Token[tuple[Any, ...]]


def _new_thread_stacks() -> dict[str, list[Any]]:
    stacks: dict[str, list[Any]] = {"run": [], "step": []}
    _local.stacks = stacks
    return stacks


def enter(kind: str, obj: Any) -> LocalToken:
    """Make ``obj`` the innermost ``kind`` ("run" or "step"); the token is for :func:`leave`."""
    enter_process(kind, obj)
    return enter_local(kind, obj)


def leave(kind: str, obj: Any, token: LocalToken) -> None:
    """Undo :func:`enter`, even from another thread or out of order."""
    leave_local(kind, obj, token)
    leave_process(kind, obj)


def enter_local(kind: str, obj: Any) -> LocalToken:
    """Make ``obj`` the innermost ``kind`` of this task or thread only (a generator
    step while its body runs); see :func:`enter`."""
    var = _context[kind]
    held = var.get(None)
    if held is None:  # inline, not calls: a @step generator comes here for every item
        asyncio = sys.modules.get("asyncio")  # not imported here: no loop without it
        if asyncio is None or asyncio._get_running_loop() is None:
            stacks = getattr(_local, "stacks", None) or _new_thread_stacks()
            stack = stacks[kind]
            stack.append(obj)
            return stack
    global _used_in_context
    _used_in_context = True
    return var.set((*(held or ()), obj))


def leave_local(kind: str, obj: Any, token: LocalToken) -> None:
    """Undo :func:`enter_local`."""
    if isinstance(token, list):
        try:
            token.remove(obj)
        except ValueError:
            pass
        return
    var = _context[kind]
    held = var.get(())
    if obj not in held:
        return  # left from another context (its own copy keeps it until it ends)
    rest = tuple(o for o in held if o is not obj)
    if not rest and token.old_value is Token.MISSING:
        try:
            var.reset(token)
            return  # unset again: numpy's lookups stop walking the context
        except (ValueError, RuntimeError):
            pass  # reset already, or a token of another context
    var.set(rest)


def enter_process(kind: str, obj: Any) -> None:
    """Make ``obj`` visible as the process's innermost ``kind`` (to threads and tasks
    that entered none); a generator step holds this for its whole life."""
    _process[kind].append(obj)


def leave_process(kind: str, obj: Any) -> None:
    """Undo the process-wide part of :func:`enter`."""
    try:
        _process[kind].remove(obj)
    except ValueError:
        pass


def active(kind: str) -> Any:
    """This task's or thread's innermost ``kind``, else the process's, else ``None``."""
    if _used_in_context:  # a process that never ran a step in a task skips the lookup
        held = _context[kind].get(None)
        if held:
            return held[-1]
    stacks = getattr(_local, "stacks", None)
    stack = stacks[kind] if stacks is not None else None
    try:
        return stack[-1] if stack else _process[kind][-1]
    except IndexError:  # emptied by another thread just now
        return None
