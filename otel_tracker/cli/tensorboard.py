"""``otel-tracker tensorboard RUN...``: TensorBoard over runs' event files (the
``tensorboard`` extra), on an ephemeral port of 127.0.0.1 until Ctrl-C."""

from __future__ import annotations

import argparse
import ipaddress
import sys
from typing import Any

from .options import add_command
from .read import open_store


def add_commands(sub: Any) -> None:
    """Add ``tensorboard`` to the main parser's subcommands."""
    board = add_command(
        sub,
        "tensorboard",
        "serve TensorBoard over runs' event files: the mirror's and those their command "
        "wrote (needs the tensorboard extra); Ctrl-C stops it",
        "  otel-tracker tensorboard latest             # http://127.0.0.1:<free port>/\n"
        "  otel-tracker tensorboard 20261203T0912 20261203T1040 --port 6006",
    )
    board.add_argument("runs", nargs="+", metavar="RUN", help="run id, unique prefix or 'latest'")
    board.add_argument("--host", default="127.0.0.1", help="address (default 127.0.0.1)")
    board.add_argument("--port", type=int, default=0, help="port (default 0: a free one)")
    board.set_defaults(func=cmd_tensorboard)


def cmd_tensorboard(args: argparse.Namespace) -> int:
    from ..errors import OtelTrackerError
    from ..printable import printable
    from ..ui.tensorboard import TensorBoardServer, event_dirs, serve_until_stopped

    if not 0 <= args.port <= 65535:
        raise OtelTrackerError(f"--port must be 0 to 65535, got {args.port}")
    store = open_store(args)
    dirs = []
    empty = []
    for ref in dict.fromkeys(args.runs):  # a run named twice is shown once
        view = store.get(ref)
        found = event_dirs(view)
        if not found:
            empty.append(view.run_id)
        dirs.extend(d for d in found if d not in dirs)
    if not dirs:
        raise OtelTrackerError(
            f"no TensorBoard event files in {', '.join(empty)}: record runs with "
            "--tensorboard (the mirror), or have the command write some"
        )
    for run_id in empty:
        print(f"otel-tracker: warning: {run_id} has no TensorBoard event files", file=sys.stderr)
    if not _loopback(args.host):
        print(
            f"otel-tracker: warning: TensorBoard has no access control; {args.host} "
            "exposes these runs to the network",
            file=sys.stderr,
        )
    server = TensorBoardServer(dirs, host=args.host, port=args.port)

    def ready(url: str) -> None:
        print(f"otel-tracker tensorboard: {url}", flush=True)
        for d in dirs:
            print(f"  {printable(d.name)}  {printable(str(d.path))}", file=sys.stderr)
        print("Ctrl-C stops it", file=sys.stderr, flush=True)

    serve_until_stopped(server, ready)
    return 0


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
