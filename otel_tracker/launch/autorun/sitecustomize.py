"""Start-up hook of ``otel-tracker run --auto``: the child reports its own process.

Everything is guarded: a Python that cannot import otel_tracker, or any error,
leaves the program running untracked. Then the ``sitecustomize`` this one
shadows (the environment's own, if any) is imported as usual.
"""

import importlib
import os
import sys


def _instrument() -> None:
    try:
        from otel_tracker.launch.auto import start
    except Exception as exc:  # another interpreter, without otel_tracker: run untracked
        os.environ.pop("OTEL_TRACKER_AUTO", None)
        print(f"otel-tracker --auto: not instrumented ({exc})", file=sys.stderr)
        return
    start()


def _chain() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    saved = list(sys.path)
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    ours = sys.modules.pop("sitecustomize", None)
    try:
        importlib.import_module("sitecustomize")
    except ImportError:
        if ours is not None:
            sys.modules["sitecustomize"] = ours
    finally:
        sys.path[:] = saved


if os.environ.get("OTEL_TRACKER_AUTO") == "1":
    _instrument()
_chain()
