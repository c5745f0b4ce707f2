"""The run and step active now: this thread's innermost, else the process's.

Deliberately not ``contextvars``: while any context variable is set, every lookup of
a variable that is *not* set walks the context's HAMT instead of returning at once,
and numpy 2 looks one up on every ufunc call. Two variables set by a run made
small-array numpy code 2-4% slower (callgrind: +2.0% instructions, all in
``_PyHamt_Find``); plain lists cost nothing between calls.

A thread that entered no run or step sees the process's innermost one, so worker
threads (data loaders, thread pools) can call ``current_step().advance()`` too.
"""

from __future__ import annotations

import threading
from typing import Any

_local = threading.local()
# list.append and list.remove are atomic under the GIL (Run and Step compare by
# identity), so no lock: a lock held across a fork would deadlock the child.
_process: dict[str, list[Any]] = {"run": [], "step": []}


def _thread_stack(kind: str) -> list[Any]:
    stacks = getattr(_local, "stacks", None)
    if stacks is None:
        stacks = _local.stacks = {"run": [], "step": []}
    return stacks[kind]


def enter(kind: str, obj: Any) -> list[Any]:
    """Make ``obj`` the innermost ``kind`` ("run" or "step"); the token is for :func:`leave`."""
    stack = _thread_stack(kind)
    stack.append(obj)
    _process[kind].append(obj)
    return stack


def leave(kind: str, obj: Any, token: list[Any]) -> None:
    """Undo :func:`enter`, even from another thread or out of order."""
    for stack in (token, _process[kind]):
        try:
            stack.remove(obj)
        except ValueError:
            pass


def active(kind: str) -> Any:
    """This thread's innermost ``kind``, else the process's, else ``None``."""
    stack = _thread_stack(kind)
    try:
        return stack[-1] if stack else _process[kind][-1]
    except IndexError:  # emptied by another thread just now
        return None
