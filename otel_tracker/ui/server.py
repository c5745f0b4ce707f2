"""``otel-tracker ui``: a local, read-only web server over the runs root (aiohttp).

Pages are static files (``ui/static``: the app, its CSS and uPlot, no CDN) that
read JSON from ``/api/...`` and get changes pushed over one WebSocket (``/ws``).
The server is a client of the read API (:mod:`otel_tracker.history`,
:mod:`otel_tracker.analysis`) and never writes under the root.

Security: only GET/HEAD and the WebSocket; the ``Host`` header must name the
address served (a DNS-rebinding page cannot read it) and a WebSocket's ``Origin``
must be the page's own; every response carries a Content-Security-Policy without
inline script; off loopback an access token is required (a cookie once given).
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import logging
import mimetypes
import os
import secrets
from pathlib import Path
from typing import Any

from ..errors import OtelTrackerError, RunNotFoundError
from ..history.store import RunStore
from .files import open_file, run_dir
from .hub import CHART_BUCKETS, Client, Hub
from .views import RunQuery
from .watch import RootWatcher

logger = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
FILE_CSP = "default-src 'none'; sandbox"  # an artifact is data, never a page of ours
TOKEN_COOKIE = "otel_tracker_token"
MAX_PAGE = 200
MAX_COMPARE = 8
REFRESH_S = 1.0
SEND_TIMEOUT_S = 5.0
FILE_CHUNK = 256 * 1024
_PATH_CHARS = frozenset("/\\\x00")
WARM_CHUNK = 100  # rows read per start-up job (about 25 ms at 10,000 runs)


class UiError(OtelTrackerError):
    """The server cannot start as asked."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_access(host: str, token: str | None) -> str | None:
    """The token to require (``"generate"`` makes one), or None on loopback without one;
    a :class:`UiError` for another address without a token."""
    if token == "generate":
        return secrets.token_urlsafe(24)
    if token:
        return token
    if not is_loopback(host):
        raise UiError(
            f"--host {host} is not a loopback address: anyone who can reach it could read "
            "your runs; pass --token TOKEN (or --token generate)"
        )
    return None


class UiServer:
    """The app, its hub and watcher; :meth:`start` binds, :meth:`stop` ends."""

    def __init__(
        self,
        store: RunStore,
        *,
        host: str = "127.0.0.1",
        port: int = 8765,
        token: str | None = None,
        poll: bool = False,
    ) -> None:
        self.store, self.host, self.port, self.token = store, host, port, token
        self.hub = Hub(store)
        self.watcher = RootWatcher(store.root, self._on_change, poll=poll)
        self._changed: set[str] = set()
        self._root_changed = True
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self._runner: Any = None
        self.url = ""

    # -- lifecycle --------------------------------------------------------------------
    async def start(self) -> str:
        from aiohttp import web

        app = web.Application(middlewares=[self._guard])
        app.router.add_get("/", self._index)
        app.router.add_get("/run/{run_id}", self._index)
        app.router.add_get("/compare", self._index)
        app.router.add_get("/static/{path:.+}", self._static)
        app.router.add_get("/api/runs", self._runs)
        app.router.add_get("/api/runs/{run_id}", self._run)
        app.router.add_get("/api/runs/{run_id}/telemetry", self._telemetry)
        app.router.add_get("/api/runs/{run_id}/logs", self._logs)
        app.router.add_get("/api/compare", self._compare)
        app.router.add_get("/files/{run_id}/{path:.+}", self._file)
        app.router.add_get("/ws", self._socket)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        try:
            await site.start()
        except OSError as exc:
            await self._runner.cleanup()
            raise UiError(
                f"cannot serve on {self.host}:{self.port}: {exc.strerror or exc}"
            ) from None
        sockets = site._server.sockets if site._server else []  # type: ignore[union-attr]
        port = sockets[0].getsockname()[1] if sockets else self.port
        shown = f"[{self.host}]" if ":" in self.host else self.host
        self.port = port
        self.url = f"http://{shown}:{port}/"
        self._tasks = [
            asyncio.create_task(self.watcher.run()),
            asyncio.create_task(self._refresh_loop()),
            asyncio.create_task(self._warm()),
        ]
        return self.url

    async def stop(self) -> None:
        self.watcher.stop()
        for task in self._tasks:
            task.cancel()
        for client in list(self.hub.clients):
            client.queue.put_nowait(None)
        if self._runner is not None:
            await self._runner.cleanup()
        self.hub.close()

    async def _warm(self) -> None:
        start = 0
        try:
            while await self.hub.call(self.hub.warm, start, WARM_CHUNK):
                start += WARM_CHUNK
        except Exception:
            logger.debug("warming the run index failed", exc_info=True)

    # -- changes ----------------------------------------------------------------------
    def _on_change(self, runs: set[str], root_changed: bool) -> None:
        self._changed |= runs
        self._root_changed = self._root_changed or root_changed
        self._wake.set()

    async def _refresh_loop(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), REFRESH_S)
            except asyncio.TimeoutError:
                pass
            self._wake.clear()
            changed, root_changed = self._changed, self._root_changed
            self._changed, self._root_changed = set(), False
            watched = {r for c in self.hub.clients for r in c.runs}
            try:
                events = await self.hub.call(self.hub.refresh, changed, root_changed, watched)
            except Exception:
                logger.warning("otel-tracker ui: reading the root failed", exc_info=True)
                continue
            self.watcher.watch(self.hub.live_runs() | watched)
            for kind, run_id, data in events:
                await self._publish(kind, run_id, data)

    async def _publish(self, kind: str, run_id: str, data: Any) -> None:
        if kind == "row":
            message = {"type": "run", "row": data}
        elif kind == "removed":
            message = {"type": "removed", "run_id": run_id}
        elif kind == "samples":
            message = {"type": "samples", "run_id": run_id, "samples": data}
        elif kind == "charts":
            message = {"type": "charts", "run_id": run_id, **data}
        else:
            message = {"type": "log", "run_id": run_id, **data}
        for client in list(self.hub.clients):
            wants = client.runs_page if kind in ("row", "removed") else False
            wants = wants or run_id in client.runs
            if wants:
                self._enqueue(client, message)

    def _enqueue(self, client: Client, message: dict[str, Any]) -> None:
        if client.closing:
            return
        try:
            client.queue.put_nowait(message)
        except asyncio.QueueFull:  # a page that stopped reading: it reloads on reconnect
            while not client.queue.empty():
                client.queue.get_nowait()
            client.queue.put_nowait(None)
            client.closing = True

    # -- guard ------------------------------------------------------------------------
    @property
    def _guard(self) -> Any:
        from aiohttp import web

        @web.middleware
        async def guard(request: Any, handler: Any) -> Any:
            if request.method not in ("GET", "HEAD"):
                return web.Response(status=405, text="read-only", headers={"Allow": "GET, HEAD"})
            if not self._host_allowed(request.host):
                return web.Response(status=421, text="unknown host")
            set_cookie = False
            if self.token is not None:
                given = request.query.get("token") or request.cookies.get(TOKEN_COOKIE) or ""
                if not hmac.compare_digest(given.encode(), self.token.encode()):
                    return web.Response(status=401, text="an access token is required")
                set_cookie = request.query.get("token") is not None
            response = await handler(request)
            if not isinstance(response, web.WebSocketResponse):
                response.headers.setdefault("Content-Security-Policy", PAGE_CSP)
                response.headers["X-Content-Type-Options"] = "nosniff"
                response.headers["Referrer-Policy"] = "no-referrer"
                response.headers["X-Frame-Options"] = "DENY"
                if set_cookie:
                    response.set_cookie(TOKEN_COOKIE, self.token, httponly=True, samesite="Strict")
            return response

        return guard

    def _host_allowed(self, host: str | None) -> bool:
        if self.token is not None:
            return True  # the token guards it (a name or address the operator chose)
        if not host:
            return False
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        return is_loopback(name.strip("[]")) and host.endswith(f":{self.port}")

    # -- pages and API ----------------------------------------------------------------
    async def _index(self, request: Any) -> Any:
        from aiohttp import web

        return web.FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    async def _static(self, request: Any) -> Any:
        from aiohttp import web

        relative = request.match_info["path"]
        path = (STATIC / relative).resolve()
        if STATIC.resolve() not in path.parents or not path.is_file():
            raise web.HTTPNotFound()
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        if path.suffix == ".js":
            content_type = "text/javascript"
        return web.FileResponse(path, headers={"Content-Type": content_type})

    async def _runs(self, request: Any) -> Any:
        query = RunQuery.from_params(request.query)
        offset = _int(request.query.get("offset"), 0, 0, 10**9)
        limit = _int(request.query.get("limit"), 50, 1, MAX_PAGE)
        data = await self.hub.call(self.hub.query, query, offset, limit)
        return _json(data)

    async def _run(self, request: Any) -> Any:
        run_id = await self._guarded(self._canonical, request.match_info["run_id"])
        with_analysis = request.query.get("analysis") != "0"
        data = await self._guarded(self.hub.detail, run_id, with_analysis)
        return _json(data)

    async def _telemetry(self, request: Any) -> Any:
        run_id = await self._guarded(self._canonical, request.match_info["run_id"])
        buckets = _int(request.query.get("buckets"), CHART_BUCKETS, 10, 5000)
        data = await self._guarded(self.hub.charts, run_id, buckets, False)
        return _json(data)

    async def _logs(self, request: Any) -> Any:
        run_id = await self._guarded(self._canonical, request.match_info["run_id"])
        return _json(await self.hub.call(self.hub.log_tails, run_id))

    async def _compare(self, request: Any) -> Any:
        from aiohttp import web

        ids = list(dict.fromkeys(request.query.getall("run", [])))
        if not 2 <= len(ids) <= MAX_COMPARE:
            raise web.HTTPBadRequest(text=f"compare takes 2 to {MAX_COMPARE} runs (?run=A&run=B)")
        data = await self._guarded(self._compare_data, ids)
        return _json(data)

    def _compare_data(self, ids: list[str]) -> dict[str, Any]:
        from ..analysis.baseline import BaselineStore, baseline_key
        from ..analysis.compare import compare, rows
        from ..history.pipeline_history import history_digest

        views = [self.hub.store.get(self._canonical(i)) for i in ids]
        comparison = compare(views)
        baselines = []
        for view in views:
            name, scenario = str(view.doc.get("name")), view.doc.get("scenario")
            try:
                found = BaselineStore.under(self.hub.root).find(
                    name, scenario, history_digest(view.doc)
                )
            except OtelTrackerError:
                found = None
            baselines.append(
                None
                if found is None
                else {
                    "key": found.get("key") or baseline_key(name, scenario),
                    "revision": found.get("revision"),
                    "steps": {
                        step: (figures.get("duration_s") or {}).get("median")
                        for step, figures in (found.get("steps") or {}).items()
                        if isinstance(figures, dict)
                    },
                }
            )
        charts = {v.run_id: self.hub.charts(v.run_id, 300, aligned=True) for v in views}
        data = {
            **comparison,
            "table": [[label, cells] for label, cells in rows(comparison)],
            "baselines": baselines,
            "telemetry": charts,
        }
        return json.loads(json.dumps(data, default=str))

    async def _file(self, request: Any) -> Any:
        from aiohttp import web

        run_id, relative = request.match_info["run_id"], request.match_info["path"]
        fd = await self.hub.call(open_file, self.hub.root, run_id, relative)
        if fd is None:
            raise web.HTTPNotFound()
        name = relative.rsplit("/", 1)[-1]
        content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        inline = content_type.startswith(("image/", "text/")) or content_type == "application/json"
        if content_type.startswith("text/") or content_type in ("application/json",):
            content_type = "text/plain; charset=utf-8"  # never rendered as a page
        disposition = "inline" if inline else "attachment"
        # served from the descriptor that was checked: nothing swapped in later is read
        loop = asyncio.get_running_loop()
        with os.fdopen(fd, "rb") as file:
            response = web.StreamResponse(
                headers={
                    "Content-Type": content_type,
                    "Content-Length": str(os.fstat(file.fileno()).st_size),
                    "Content-Disposition": f"{disposition}; filename*=UTF-8''" + _quote(name),
                    "Content-Security-Policy": FILE_CSP,
                }
            )
            await response.prepare(request)
            left = int(response.headers["Content-Length"])  # a growing log: what was there
            while left > 0:
                chunk = await loop.run_in_executor(None, file.read, min(FILE_CHUNK, left))
                if not chunk:
                    break
                left -= len(chunk)
                await response.write(chunk)
            await response.write_eof()
        return response

    def _canonical(self, ref: str) -> str:
        """The run id ``ref`` names under the root (an id, a unique prefix, ``latest``);
        a path-like reference (the CLI takes run directories) is no run here."""
        if ref != ref.strip() or not ref or ref.startswith(".") or _PATH_CHARS & set(ref):
            raise RunNotFoundError(f"no run {ref!r}")
        path = self.hub.store.resolve(ref)
        if path.parent != self.hub.root or run_dir(self.hub.root, path.name) is None:
            raise RunNotFoundError(f"no run {ref!r}")
        return path.name

    async def _guarded(self, fn: Any, *args: Any) -> Any:
        from aiohttp import web

        try:
            return await self.hub.call(fn, *args)
        except RunNotFoundError as exc:
            raise web.HTTPNotFound(text=str(exc)) from None
        except OtelTrackerError as exc:
            raise web.HTTPUnprocessableEntity(text=str(exc)) from None

    # -- the WebSocket ----------------------------------------------------------------
    async def _socket(self, request: Any) -> Any:
        from aiohttp import WSMsgType, web

        origin = request.headers.get("Origin")
        # a sandboxed frame of any site says "null": only the page's own origin, or none
        # (not a browser), may read runs over the socket
        if origin is not None and origin != f"http://{request.host}":
            return web.Response(status=403, text="cross-origin WebSocket refused")
        ws = web.WebSocketResponse(heartbeat=20, max_msg_size=64 * 1024)
        await ws.prepare(request)

        async def send(message: dict[str, Any]) -> None:
            await ws.send_str(json.dumps(message, default=str))

        client = Client(send)
        self.hub.clients.add(client)
        sender = asyncio.create_task(self._sender(client, ws))
        try:
            await send({"type": "hello", "watcher": self.watcher.mode})
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                try:
                    request_data = json.loads(msg.data)
                except ValueError:
                    continue
                if isinstance(request_data, dict):
                    await self._watch(client, request_data)
        finally:
            self.hub.clients.discard(client)
            sender.cancel()
        return ws

    async def _sender(self, client: Client, ws: Any) -> None:
        while True:
            message = await client.queue.get()
            if message is None:
                await ws.close(message=b"reload")
                return
            try:
                await asyncio.wait_for(client.send(message), SEND_TIMEOUT_S)
            except Exception:
                await ws.close()
                return

    async def _watch(self, client: Client, request: dict[str, Any]) -> None:
        """``{"watch": "runs"}``, or ``{"watch": "run", "run_id": ID}``, or
        ``{"watch": "runs", "run_ids": [...]}`` (compare): the charts and logs so far
        come first on this socket, then every change after them."""
        what = request.get("watch")
        # each watch replaces the last: the page changed (same socket, another view)
        client.runs_page = what == "runs"
        client.runs = set()
        ids = request.get("run_ids") if what == "runs" else [request.get("run_id")]
        ids = [i for i in ids or [] if isinstance(i, str)][:MAX_COMPARE]
        for ref in ids:
            try:
                run_id, charts, logs = await self.hub.call(self._subscribe, ref, what == "run")
            except OtelTrackerError:
                continue
            # no await between the worker's reply and this: every later refresh's
            # samples and lines reach this page too, none twice
            client.runs.add(run_id)
            self._enqueue(client, {"type": "charts", "run_id": run_id, **charts})
            for name, log in logs.items():
                self._enqueue(
                    client, {"type": "log", "run_id": run_id, "name": name, **log, "first": True}
                )
        self._wake.set()

    def _subscribe(self, ref: str, run_page: bool) -> tuple[str, Any, Any]:
        run_id = self._canonical(ref)
        charts, logs = self.hub.subscribe(run_id, CHART_BUCKETS, not run_page, run_page)
        return run_id, charts, logs


def _json(data: Any) -> Any:
    from aiohttp import web

    return web.json_response(data, dumps=lambda d: json.dumps(d, default=str))


def _int(text: str | None, default: int, low: int, high: int) -> int:
    try:
        return max(low, min(high, int(text))) if text is not None else default
    except ValueError:
        return default


def _quote(name: str) -> str:
    from urllib.parse import quote

    return quote(name, safe="")


async def serve(server: UiServer, ready: Any = None) -> None:
    """Run until cancelled (Ctrl-C or SIGTERM in the CLI)."""
    url = await server.start()
    if ready is not None:
        ready(url)
    try:
        await asyncio.Event().wait()
    finally:
        await server.stop()
