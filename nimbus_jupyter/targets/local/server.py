"""The detached local server: API Gateway's part (HTTP, API key, size limit, throttling) in front of
worker processes that run the Lambda handler.

Run as ``python -m nimbus_jupyter.targets.local.server DEPLOYMENT_DIR``. It outlives the kernel that
started it. SIGHUP switches to the version named in ``server.json`` without dropping a request:
the new workers load first, new requests go to them, and the old workers finish what they hold.
Its state goes to ``status.json`` for the kernel side to read. HTTP itself (and its bounds: timeouts,
head size, reading the rest of a body it refused so the refusal arrives) is ``front.py``'s.
"""
from __future__ import annotations

import asyncio
import base64
import hmac
import json
import os
import signal
import socket
import sys
import time
import traceback
import uuid
from collections import Counter
from pathlib import Path
from typing import Any, Dict, Optional

from ...runtime.limits import MAX_PAYLOAD_BYTES
from ...runtime.loader import read_manifest
from .files import DeploymentFiles, read_json, write_json_atomic
from .front import BodyTimeout, BodyTooLarge, ClientGone, HttpFront, Limits, Request, Response, error_response
from .hosts import BaseZygote, Host, open_host, zygote_enabled
from .pool import Pool, Saturated, WorkerDied, WorkerLoadError, worker_env
from .requestlog import request_line
from .stats import CONTENT_TYPE_LATEST, ServerMetrics, Windows, route_label

_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
WARM_VERSIONS = 2  # version hosts kept loaded: the serving one and the one before it (a rollback forks from it)


class LocalServer:
    def __init__(self, files: DeploymentFiles) -> None:
        self.files = files
        self.instance = uuid.uuid4().hex
        self.config: Dict[str, Any] = {}
        self.key = files.read_key().encode()
        self.pool: Optional[Pool] = None
        self.manifest: Dict[str, Any] = {}
        self.port = 0
        self.started = time.time()
        self.reload_error: Optional[Dict[str, Any]] = None
        self._reloading = asyncio.Lock()
        self.counts: Counter = Counter()  # answers to /predict by status code, for health and tests
        self.row_errors = 0  # rows answered as their own error (a text the pipeline raised on) in 200s
        self.windows = Windows()
        self.metrics = ServerMetrics(self._workers, lambda: str(self.config.get("version")), self.started)
        # Workers fork from a loaded host per version (hosts.py); the base zygote is the home's.
        self.base: Optional[BaseZygote] = BaseZygote(files.root.parent.parent) if zygote_enabled() else None
        self.hosts: Dict[str, Host] = {}  # version -> its host, newest last

    # -- lifecycle -------------------------------------------------------------------------------
    async def startup(self) -> None:
        self.config = read_json(self.files.server_config) or {}
        try:
            self.pool, self.manifest = await self._new_pool(self.config)
        except WorkerLoadError as exc:
            self._write_status("failed", error=str(exc))
            raise SystemExit(1)
        self._write_status("ready")
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, lambda: asyncio.ensure_future(self.reload()))

    async def shutdown(self) -> None:
        if self.pool:
            await self.pool.drain(timeout=10)
        for host in self.hosts.values():
            await host.close()
        if self.base:
            self.base.close()
        self._write_status("stopped")

    async def reload(self) -> None:
        """Switch to the version in server.json; on failure keep serving the current one."""
        async with self._reloading:
            config = read_json(self.files.server_config) or {}
            if config.get("version") == self.config.get("version"):
                return
            try:
                pool, manifest = await self._new_pool(config)
            except WorkerLoadError as exc:
                self.reload_error = {"version": config.get("version"), "error": str(exc)}
                self._write_status("ready")
                return
            old, self.pool, self.manifest, self.config = self.pool, pool, manifest, config
            self.reload_error = None
            self._write_status("ready")
            if old:
                await old.drain()
            await self._prune_hosts()

    async def _new_pool(self, config: Dict[str, Any]) -> tuple:
        bundle_dir = Path(config["bundle_dir"])
        version = str(config["version"])
        host = await self._host(version, bundle_dir, config["name"])
        pool = Pool(host, int(config.get("workers", 1)), int(config.get("max_queue", 0)),
                    reopen=lambda: self._host(version, bundle_dir, config["name"], fresh=True),
                    on_replace=lambda: self._write_status("ready") if self.pool is pool else None)
        try:
            await pool.start()
        except WorkerLoadError:
            await self._drop_host(version)
            raise
        return pool, read_manifest(bundle_dir)

    async def _host(self, version: str, bundle_dir: Path, name: str, fresh: bool = False) -> Host:
        """The version's host: the warm one when it is still alive, else a new one (the bundle loaded)."""
        host = self.hosts.get(version)
        if host is not None and not fresh and getattr(host, "alive", True) and host.bundle_dir == bundle_dir:
            self.hosts[version] = self.hosts.pop(version)  # most recently used last
            return host
        await self._drop_host(version)
        host, note = await open_host(self.base, bundle_dir, worker_env(name, version))
        if note:
            print(f"nimbus: version {version}: {note}", file=sys.stderr, flush=True)
        self.hosts[version] = host
        return host

    async def _drop_host(self, version: str) -> None:
        host = self.hosts.pop(version, None)
        if host is not None:
            await host.close()

    async def _prune_hosts(self) -> None:
        """Keep the serving version's host and the one before it loaded; close the rest."""
        serving = str(self.config.get("version"))
        others = [v for v in self.hosts if v != serving]
        for version in others[:max(0, len(others) - (WARM_VERSIONS - 1))]:
            await self._drop_host(version)
        self._write_status("ready")

    def _write_status(self, state: str, error: Optional[str] = None) -> None:
        write_json_atomic(self.files.status, {
            "state": state, "pid": os.getpid(), "port": self.port, "instance": self.instance,
            "version": self.config.get("version"), "error": error, "reload_error": self.reload_error,
            "workers": self.pool.worker_pids() if self.pool else [], "updated": time.time(),
            "hosts": {v: {"how": h.how, "pid": h.pid} for v, h in self.hosts.items()},
            "zygote": str(self.base.path) if self.base else None,
        })

    # -- requests --------------------------------------------------------------------------------
    def health(self) -> Dict[str, Any]:
        return {
            "status": "ok", "name": self.config.get("name"), "version": str(self.config.get("version")),
            "instance": self.instance, "lang": self.manifest.get("lang"),
            "components": self.manifest.get("components"), "hash": self.manifest.get("hash"),
            "default_fields": self.manifest.get("fields", {}).get("default"),
            "extensions": self.pool.extensions if self.pool else [],
            "requests": dict(self.counts),
            "row_errors": self.row_errors,
            "workers": self._workers(),
            "uptime_seconds": round(time.time() - self.started, 1),
        }

    def _workers(self) -> Dict[str, int]:
        pool = self.pool
        return {"size": pool.size if pool else 0, "busy": pool.busy if pool else 0,
                "queued": pool.queued if pool else 0, "replaced": pool.replaced if pool else 0}

    def stats(self) -> Dict[str, Any]:
        """/predict traffic over the last hour and day (the server's own counters), for %nimbus_status."""
        return {"version": str(self.config.get("version")), "instance": self.instance,
                "uptime_seconds": round(time.time() - self.started, 1), "workers": self._workers(),
                "last_hour": self.windows.window("1h", 3600), "last_day": self.windows.window("24h", 86400)}

    async def handle(self, request: Request) -> Response:
        """Every request: answer it, count it, log one line for it (not for a healthy /health), and tag
        the answer with its id."""
        request_id = uuid.uuid4().hex
        started = time.perf_counter()
        info: Dict[str, Any] = {}
        try:
            response = await self._route(request, request_id, info)
        except Exception:  # a fault of ours: the traceback to the log, a JSON 500 to the caller
            print(f"nimbus: request {request_id} failed in the server:\n{traceback.format_exc()}", file=sys.stderr, flush=True)
            response = _error(500, "internal", f"the server failed on this request (request id {request_id}); see its log")
        seconds = time.perf_counter() - started
        path, status = request.path, response.status
        route = route_label(path)
        row_errors = int(info.get("row_errors") or 0)
        if path == "/predict":
            self.counts[str(status)] += 1
            self.windows.record(status, seconds * 1000, pipeline_failed=row_errors > 0)
        self.metrics.observe(route, status, seconds, row_errors)
        response.headers["x-nimbus-request-id"] = request_id
        if route == "/health" and status == 200:
            return response  # liveness probes (%nimbus_list, the sidebar's poll) would drown the log; counted above
        message = _error_message(response) if status >= 400 else None
        if row_errors:
            message = f"the pipeline failed on {row_errors} of {info.get('texts')} texts, answered as their rows' errors"
        _log(request_line(request_id, request.method, route, status, seconds * 1000, info.get("texts"), message, row_errors))
        return response

    async def _route(self, request: Request, request_id: str, info: Dict[str, Any]) -> Response:
        path = request.path
        if request.method not in _METHODS:  # before the key, as a router would: no route takes it
            return _error(405, "method_not_allowed",
                          f"{request.method} is not a method this endpoint takes; use {', '.join(_METHODS)}",
                          {"Allow": ", ".join(_METHODS)})
        if path == "/health" and request.method == "GET":
            return Response.json(self.health())
        if path in ("/metrics", "/stats") and request.method == "GET":
            # Behind the key like every route but /health: they tell traffic, version and hash of a
            # pipeline to anyone who can reach the port, and a scraper can send a header.
            if not self._authorized(request):
                return _unauthorized()
            if path == "/metrics":
                return Response(200, self.metrics.exposition(), {"Content-Type": CONTENT_TYPE_LATEST})
            return Response.json(self.stats())
        return await self._answer(request, request_id, info)

    def _authorized(self, request: Request) -> bool:
        provided = request.headers.get("x-api-key", "").encode("latin-1")
        return hmac.compare_digest(provided, self.key)

    async def _answer(self, request: Request, request_id: str, info: Dict[str, Any]) -> Response:
        # The refusals below come before the body is read; the front reads and discards it afterwards,
        # so a client still sending gets the answer rather than a reset.
        if not self._authorized(request):
            return _unauthorized()
        if self.pool is not None and self.pool.saturated:  # say so before reading a body nobody will run
            return _error(429, "throttled", "every worker is busy; retry with backoff", {"Retry-After": "1"})
        declared = request.content_length
        if declared is not None and declared > MAX_PAYLOAD_BYTES:
            return _too_large(declared)
        try:
            body = await request.body(MAX_PAYLOAD_BYTES)
        except BodyTooLarge as exc:
            return _too_large(exc.size)
        except BodyTimeout:
            return _error(408, "request_timeout", "the request body did not arrive in time; send it at once")
        except ClientGone:  # the client hung up mid-body: nobody to answer, nothing worth a traceback
            return _error(400, "client_disconnected", "the client closed the connection before sending the whole body")
        event = self._event(request, request_id, body)
        pool = self.pool
        if pool is None:
            return _error(503, "starting", "the endpoint is starting; retry in a moment", {"Retry-After": "1"})
        try:
            result = await pool.submit(event)
        except Saturated:
            return _error(429, "throttled", "every worker is busy; retry with backoff", {"Retry-After": "1"})
        except WorkerDied:
            return _error(502, "worker_died", "the worker running this request died and is being replaced; retry",
                          {"Retry-After": "1"})
        info["texts"] = result.get("nimbus_texts")  # set by the local worker: how many texts it ran
        info["row_errors"] = result.get("nimbus_row_errors") or 0
        self.row_errors += info["row_errors"]
        payload = result.get("body") or ""
        content = base64.b64decode(payload) if result.get("isBase64Encoded") else payload.encode("utf-8", "surrogatepass")
        return Response(int(result.get("statusCode", 200)), content, dict(result.get("headers") or {}))

    def _event(self, request: Request, request_id: str, body: bytes) -> Dict[str, Any]:
        """The API Gateway REST proxy event for this request (the key stays out of it)."""
        try:
            text: Optional[str] = body.decode("utf-8")
            encoded = False
        except UnicodeDecodeError:
            text, encoded = base64.b64encode(body).decode("ascii"), True
        headers = {k: v for k, v in request.headers.items() if k != "x-api-key"}
        query = dict(request.query) or None
        path = request.path
        return {
            "resource": path, "path": path, "httpMethod": request.method, "headers": headers,
            "multiValueHeaders": {k: [v] for k, v in headers.items()},
            "queryStringParameters": query, "pathParameters": None, "stageVariables": None,
            "requestContext": {
                "requestId": request_id, "stage": "local", "path": path, "httpMethod": request.method,
                "requestTimeEpoch": int(time.time() * 1000),
                "identity": {"sourceIp": request.client or "127.0.0.1"},
            },
            "body": text if body else None, "isBase64Encoded": encoded,
        }


def _error(status: int, code: str, message: str, headers: Optional[Dict[str, str]] = None) -> Response:
    return error_response(status, code, message, headers)


def _unauthorized() -> Response:
    return _error(401, "unauthorized", "missing or wrong API key; send it in the x-api-key header")


def _error_message(response: Response) -> str:
    """The ``message`` of a JSON error answer (the contract's errors never quote the texts)."""
    try:
        body = json.loads(bytes(response.body))
        return str(body.get("message") or body.get("error") or "")
    except (ValueError, AttributeError, TypeError):
        return ""


def _log(line: str) -> None:
    """One write(2) per line on the log (stdout, opened O_APPEND): lines from the server and its
    workers never interleave mid-line."""
    try:
        os.write(1, (line + "\n").encode("utf-8"))
    except OSError:
        pass  # a full disk must not fail the request that was answered


def _too_large(size: int) -> Response:
    return _error(413, "payload_too_large",
                  f"the request body is {size:,} bytes or more, over the {MAX_PAYLOAD_BYTES:,}-byte limit of a "
                  "Lambda invocation; send fewer or shorter texts per request")


def _listen(port: int) -> socket.socket:
    """Bind 127.0.0.1 only, on the port used before if it is free (URLs stay stable), else any."""
    # IPPROTO_TCP explicitly: asyncio turns Nagle off only on sockets that say they are TCP, and with
    # Nagle on, a kept-alive client waits ~40 ms for every response (delayed ACK).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError:
        sock.bind(("127.0.0.1", 0))
    sock.listen(2048)
    sock.set_inheritable(False)
    return sock


def main(deployment_dir: str) -> int:
    files = DeploymentFiles(Path(deployment_dir))
    config = read_json(files.server_config) or {}
    server = LocalServer(files)
    sock = _listen(int(config.get("port") or 0))
    server.port = sock.getsockname()[1]
    try:
        import uvloop  # the faster event loop (a dependency except on Windows); asyncio's otherwise

        uvloop.run(_serve(server, sock))
    except ImportError:
        asyncio.run(_serve(server, sock))
    return 0


async def _serve(server: LocalServer, sock: socket.socket) -> None:
    """Load the workers, serve until SIGTERM/SIGINT, then finish what is in flight and stop them."""
    await server.startup()
    front = HttpFront(server.handle, Limits.from_env())
    await front.start(sock)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await front.stop(grace=10.0)
    await server.shutdown()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
