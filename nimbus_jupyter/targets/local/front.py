"""HTTP/1.1 for the local server: h11 (the protocol) on asyncio streams, with bounded edges.

The server answers some requests without their body (a wrong key, every worker busy, a declared body
over the limit). Closing a socket that still holds unread request bytes makes the kernel send a reset,
and a client still sending (``requests`` and ``urllib`` send the whole body before they read) then
gets "connection reset" instead of the answer. So every answer here is followed by reading and
discarding the rest of the body, up to a bound, before the connection is reused or closed (a lingering
close past the bound). And every phase of a connection has a deadline: a fresh connection must send a
complete request head in ``head_timeout``, a kept-alive one may idle ``keepalive_timeout``, a body must
arrive within ``body_timeout`` of its head; a head over ``max_head_bytes`` (API Gateway's 10,240-byte
limit on request line and headers) is answered 431. Refusals that come before there is a request (431,
408, 400 for a malformed head, 503 past ``max_connections``) are JSON in the contract's error shape.

Why not uvicorn: it answers and closes without reading the body (the reset above), has no timeout
before the first request nor for slow heads and bodies, and turns h11's 431 into a plain-text 400
(its httptools parser has no head limit at all). Those are the edges this module exists for; h11 is
python-hyper's sans-I/O HTTP/1.1 implementation and does all the parsing and framing.
"""
from __future__ import annotations

import asyncio
import http
import json
import os
import socket
from dataclasses import dataclass, field
from typing import Awaitable, Callable, Dict, List, Optional, Set, Tuple
from urllib.parse import parse_qsl, unquote

import h11

from ...runtime.limits import MAX_REQUEST_HEAD_BYTES

_READ = 1 << 20  # bytes per read from the socket


@dataclass(frozen=True)
class Limits:
    """The bounds of every connection (seconds and bytes). ``NIMBUS_HTTP_*`` variables override them."""

    head_timeout: float = 10.0  # a request head, complete, from the connection's start or its first byte
    keepalive_timeout: float = 30.0  # a kept-alive connection with no new request
    body_timeout: float = 30.0  # the whole body, from the end of its head
    max_head_bytes: int = MAX_REQUEST_HEAD_BYTES
    drain_bytes: int = 32 * 1024 * 1024  # a body the server did not need: read and discarded up to this
    drain_timeout: float = 10.0
    max_connections: int = field(default_factory=lambda: _default_max_connections())

    @classmethod
    def from_env(cls) -> "Limits":
        values = {}
        for name, kind in (("head_timeout", float), ("keepalive_timeout", float), ("body_timeout", float),
                           ("max_head_bytes", int), ("drain_bytes", int), ("drain_timeout", float),
                           ("max_connections", int)):
            raw = os.environ.get(f"NIMBUS_HTTP_{name.upper()}")
            if raw:
                values[name] = kind(raw)
        return cls(**values)


def _default_max_connections() -> int:
    """1,000, or half the process's file descriptors when that is less (workers' pipes need some)."""
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    except (ImportError, OSError, ValueError):
        return 1000
    return 1000 if soft == resource.RLIM_INFINITY else max(64, min(1000, soft // 2))


class BodyTooLarge(Exception):
    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.size = size


class BodyTimeout(Exception):
    """The body did not arrive within the body timeout."""


class ClientGone(Exception):
    """The client closed the connection before sending the whole body."""


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: Dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, payload: object, status: int = 200, headers: Optional[Dict[str, str]] = None) -> "Response":
        body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
        return cls(status, body, {"Content-Type": "application/json", **(headers or {})})


def error_response(status: int, code: str, message: str, headers: Optional[Dict[str, str]] = None) -> Response:
    """The contract's error shape: ``{"error": code, "message": text}``."""
    return Response.json({"error": code, "message": message}, status, headers)


class Request:
    """One request's head; the body is read on demand (``await request.body(limit)``), so an answer
    that needs no body (401, 429, 413 by Content-Length) never waits for it."""

    def __init__(self, conn: "_Connection", event: h11.Request) -> None:
        self._conn = conn
        self.method = event.method.decode("ascii", "replace").upper()
        target = event.target.decode("latin-1")
        raw_path, _, query = target.partition("?")
        self.path = unquote(raw_path)
        self.query: Dict[str, str] = dict(parse_qsl(query, keep_blank_values=True))
        self.headers: Dict[str, str] = {}
        for name, value in event.headers:
            key = name.decode("latin-1")
            text = value.decode("latin-1")
            self.headers[key] = f"{self.headers[key]},{text}" if key in self.headers else text
        self.client = conn.peer
        declared = self.headers.get("content-length", "")
        self.content_length: Optional[int] = int(declared) if declared.isdigit() else None

    async def body(self, limit: int) -> bytes:
        """The whole body; ``BodyTooLarge`` past ``limit`` bytes, ``BodyTimeout``, or ``ClientGone``."""
        return await self._conn.read_body(limit)


Handler = Callable[[Request], Awaitable[Response]]


class _Timeout(Exception):
    pass


class _Connection:
    def __init__(self, front: "HttpFront", reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.front = front
        self.limits = front.limits
        self.reader = reader
        self.writer = writer
        self.conn = h11.Connection(h11.SERVER, max_incomplete_event_size=self.limits.max_head_bytes)
        peer = writer.get_extra_info("peername")
        self.peer = peer[0] if isinstance(peer, tuple) else "127.0.0.1"
        self.loop = asyncio.get_running_loop()
        self.body_deadline = 0.0
        self.busy = False  # a request is being answered (shutdown waits for it)
        self.broken = False  # the body stalled or the client hung up: answer, then close without draining

    # -- reading -----------------------------------------------------------------------------------
    async def _receive(self, deadline: float) -> bool:
        """Feed h11 the next bytes; False at end of stream. ``_Timeout`` past the deadline."""
        remaining = deadline - self.loop.time()
        if remaining <= 0:
            raise _Timeout()
        try:
            data = await asyncio.wait_for(self.reader.read(_READ), remaining)
        except asyncio.TimeoutError:
            raise _Timeout() from None
        self.conn.receive_data(data)
        return bool(data)

    async def _next(self, deadline: float) -> object:
        while True:
            event = self.conn.next_event()
            if event is not h11.NEED_DATA:
                return event
            await self._receive(deadline)

    async def read_body(self, limit: int) -> bytes:
        if self.conn.they_are_waiting_for_100_continue:
            self.writer.write(self.conn.send(h11.InformationalResponse(status_code=100, headers=[])))
        chunks: List[bytes] = []
        size = 0
        while True:
            try:
                event = await self._next(self.body_deadline)
            except _Timeout:
                self.broken = True
                raise BodyTimeout() from None
            except h11.RemoteProtocolError:
                self.broken = True
                raise ClientGone() from None
            if isinstance(event, h11.Data):
                size += len(event.data)
                if size > limit:
                    raise BodyTooLarge(size)
                chunks.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                return b"".join(chunks)
            else:  # ConnectionClosed: the client hung up mid-body
                self.broken = True
                raise ClientGone()

    async def _next_request(self, kept_alive: bool) -> Optional[h11.Request]:
        """The next request head, or None when the connection should close (after any refusal)."""
        start = self.loop.time()
        pending = bool(self.conn.trailing_data[0])  # a pipelined request already buffered
        deadline = start + (self.limits.keepalive_timeout if kept_alive and not pending else self.limits.head_timeout)
        while True:
            try:
                event = self.conn.next_event()
            except h11.RemoteProtocolError as exc:
                status = exc.error_status_hint
                if status == 431:
                    await self._refuse(431, "headers_too_large", self._head_message())
                else:
                    await self._refuse(status, "bad_request", f"the request is not valid HTTP/1.1 ({exc}); send a well-formed request")
                return None
            if isinstance(event, h11.Request):
                return event
            if event is not h11.NEED_DATA:  # ConnectionClosed (or PAUSED, which a fresh cycle never gives)
                return None
            had_bytes = bool(self.conn.trailing_data[0])
            try:
                if not await self._receive(deadline):
                    continue  # h11 now reports ConnectionClosed (or a protocol error for a partial head)
            except _Timeout:
                if had_bytes:
                    await self._refuse(408, "request_timeout",
                                       f"the request head did not arrive within {self.limits.head_timeout:g} s; send it at once")
                return None  # idle: close quietly, as servers do with idle keep-alive connections
            if kept_alive and not had_bytes:  # the first byte of a new request: its head has head_timeout
                deadline = self.loop.time() + self.limits.head_timeout

    def _head_message(self) -> str:
        return (f"the request line and headers are over {self.limits.max_head_bytes:,} bytes (API Gateway's "
                "limit); send smaller headers")

    # -- writing -----------------------------------------------------------------------------------
    async def _refuse(self, status: int, code: str, message: str) -> None:
        """An answer before (or instead of) a request: JSON, then the connection closes."""
        response = error_response(status, code, message)
        await self._send(response, head_only=False, close=True)

    async def _send(self, response: Response, head_only: bool, close: bool) -> None:
        headers: List[Tuple[str, str]] = [(k, v) for k, v in response.headers.items()]
        headers.append(("Content-Length", str(len(response.body))))
        if close:
            headers.append(("Connection", "close"))
        try:
            reason = http.HTTPStatus(response.status).phrase.encode()
        except ValueError:
            reason = b""
        try:
            data = self.conn.send(h11.Response(status_code=response.status, headers=headers, reason=reason))
            if response.body and not head_only:
                data += self.conn.send(h11.Data(data=response.body))
            data += self.conn.send(h11.EndOfMessage())
        except h11.LocalProtocolError:  # a state h11 cannot answer from (e.g. after a broken head): just close
            return
        self.writer.write(data)
        await self.writer.drain()

    async def _discard_body(self, close: bool) -> bool:
        """Read and discard what is left of the request body (bounded), so the client, still sending,
        gets to read the answer. True if the body ended and the connection can serve another request."""
        if self.conn.their_state is not h11.SEND_BODY:
            return True
        if close:
            self.writer.write_eof()  # the answer is all we send; keep reading until they are done
        deadline = self.loop.time() + self.limits.drain_timeout
        discarded = 0
        try:
            while discarded <= self.limits.drain_bytes:
                event = await self._next(deadline)
                if isinstance(event, h11.Data):
                    discarded += len(event.data)
                elif isinstance(event, h11.EndOfMessage):
                    return not close
                else:
                    return False
        except (_Timeout, h11.RemoteProtocolError):
            return False
        return False

    # -- one connection ----------------------------------------------------------------------------
    async def serve(self, handler: Handler) -> None:
        kept_alive = False
        while not self.front.stopping:
            event = await self._next_request(kept_alive)
            if event is None:
                return
            self.busy = True
            try:
                request = Request(self, event)
                if _head_size(event) > self.limits.max_head_bytes:
                    await self._send(error_response(431, "headers_too_large", self._head_message()), request.method == "HEAD", True)
                    return
                self.body_deadline = self.loop.time() + self.limits.body_timeout
                response = await handler(request)
                declared = request.content_length or 0
                if self.broken:
                    await self._send(response, request.method == "HEAD", True)
                    return
                close = (self.front.stopping or declared > self.limits.drain_bytes
                         or (self.conn.their_state is h11.SEND_BODY and self.conn.they_are_waiting_for_100_continue)
                         or self.conn.their_state is h11.MUST_CLOSE)
                await self._send(response, request.method == "HEAD", close)
                if not await self._discard_body(close) or close:
                    return
                if self.conn.our_state is not h11.DONE or self.conn.their_state is not h11.DONE:
                    return  # e.g. the client said Connection: close (MUST_CLOSE)
                self.conn.start_next_cycle()
                kept_alive = True
            finally:
                self.busy = False


def _head_size(event: h11.Request) -> int:
    """Bytes of the request line and headers, as sent (give or take the spacing)."""
    return (len(event.method) + len(event.target) + 12
            + sum(len(name) + len(value) + 4 for name, value in event.headers.raw_items()) + 2)


class HttpFront:
    """Serves ``handler`` on a listening socket until ``stop()``."""

    def __init__(self, handler: Handler, limits: Optional[Limits] = None) -> None:
        self.handler = handler
        self.limits = limits or Limits()
        self.stopping = False
        self._server: Optional[asyncio.AbstractServer] = None
        self._connections: Set[_Connection] = set()
        self._tasks: Set[asyncio.Task] = set()

    async def start(self, sock: socket.socket) -> None:
        self._server = await asyncio.start_server(self._accept, sock=sock, limit=_READ)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        connection = _Connection(self, reader, writer)
        try:
            if len(self._connections) >= self.limits.max_connections:
                await connection._refuse(503, "too_many_connections",
                                         f"the server holds {self.limits.max_connections:,} connections already; retry shortly")
                return
            self._connections.add(connection)
            if task is not None:
                self._tasks.add(task)
            await connection.serve(self.handler)
        except (ConnectionError, asyncio.IncompleteReadError, OSError):
            pass  # the client went away: nothing to answer
        finally:
            self._connections.discard(connection)
            if task is not None:
                self._tasks.discard(task)
            writer.close()

    async def stop(self, grace: float = 10.0) -> None:
        """Stop accepting; close idle connections now and busy ones once answered (at most ``grace`` s)."""
        self.stopping = True
        if self._server is not None:
            self._server.close()
        deadline = asyncio.get_running_loop().time() + grace
        while any(c.busy for c in self._connections) and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.02)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=1.0)
