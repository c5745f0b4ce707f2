"""``otel-tracker ui``: the live web view of the runs root (the ``ui`` extra).

The parser is built without importing the server; aiohttp is imported when the
command runs, with one clear message when the extra is missing.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .options import add_command
from .read import open_store


def add_commands(sub: Any) -> None:
    """Add ``ui`` to the main parser's subcommands."""
    ui = add_command(
        sub,
        "ui",
        "serve a live, read-only web view of the runs (needs the ui extra)",
        "  otel-tracker ui                      # http://127.0.0.1:8765/\n"
        "  otel-tracker ui --port 0             # any free port, printed first\n"
        "  otel-tracker ui --host 0.0.0.0 --token generate",
    )
    ui.add_argument("--host", default="127.0.0.1", help="address to serve on (default 127.0.0.1)")
    ui.add_argument(
        "--port", type=int, default=8765, help="port (default 8765; 0 picks a free one)"
    )
    ui.add_argument(
        "--token",
        default=None,
        metavar="TOKEN|generate",
        help="require this access token (needed off loopback; 'generate' makes one)",
    )
    ui.add_argument(
        "--poll",
        action="store_true",
        help="poll the root instead of inotify (network filesystems)",
    )
    ui.set_defaults(func=cmd_ui)


def cmd_ui(args: argparse.Namespace) -> int:
    import asyncio  # here, not at the top: every other command starts without it
    import signal

    from ..errors import MissingExtraError

    try:
        import aiohttp  # noqa: F401
    except ImportError:
        raise MissingExtraError("ui", "aiohttp", what="otel-tracker ui") from None
    from ..ui.server import UiServer, check_access, serve

    if not 0 <= args.port <= 65535:
        from ..errors import OtelTrackerError

        raise OtelTrackerError(f"--port must be 0 to 65535, got {args.port}")
    token = check_access(args.host, args.token)
    server = UiServer(open_store(args), host=args.host, port=args.port, token=token, poll=args.poll)

    def ready(url: str) -> None:
        shown = url + (f"?token={token}" if token else "")
        print(f"otel-tracker ui: {shown}", flush=True)
        print(f"serving {server.store.root} read-only; Ctrl-C stops", file=sys.stderr, flush=True)

    async def main() -> None:
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(signum, task.cancel)  # type: ignore[union-attr]
        try:
            await serve(server, ready)
        except asyncio.CancelledError:
            pass

    asyncio.run(main())
    return 0
