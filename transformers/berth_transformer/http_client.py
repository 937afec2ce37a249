"""A lean HTTP/1.1 client for the REST hop to the predictor: keep-alive connections on asyncio
protocols, each request written in one send, each answer parsed by httptools (the C parser
uvicorn serves with).

aiohttp's client spent about 65 us of Python per call here (its request and response objects,
multidicts, timers, payload writers): as much as the rest of the hop's Python together. This
client does what the hop needs and nothing else:

- one host, keep-alive connections kept in a stack of idle ones (the last used first);
  a connection the server closed, or one whose answer asked to close, is not reused;
- a request on a reused connection that is closed or reset before any answer byte arrives
  (the server's keep-alive timeout racing the send) is sent once more at once, on a new
  connection, as urllib3 and Go's net/http do for idempotent calls;
- ``fresh=True``: a new connection, closed after the answer (the retry after a 503: a pooled
  connection may lead to the same draining replica);
- a deadline over connect, send and answer; a call that times out or is cancelled closes its
  connection (its answer may still come);
- TLS with the caller's context (the server's name checked as ``ssl`` does).

Errors: ``OSError`` (refused, reset, TLS failure, closed before answering; ``ConnectionError``
for the last) and ``TimeoutError``; an answer that is not HTTP is a ``ConnectionError`` too.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from typing import cast

import httptools

CRLF = "\r\n"


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]  # names lower-case (a repeated header: its last value)
    body: bytes


class _Connection(asyncio.Protocol):
    """One HTTP/1.1 connection: one request in flight at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[Answer] | None = None
        self.headers: dict[str, str] = {}
        self.body: list[bytes] = []
        self.answered = False  # a byte of the current answer arrived
        self.keep_alive = True  # the last answer did not ask to close

    # --- asyncio.Protocol -------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's does not subclass it

    def data_received(self, data: bytes) -> None:
        self.answered = True
        if self.waiter is None:  # nothing asked: the server broke the exchange
            self._fail(ConnectionError("predictor sent data nobody asked for"))
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ConnectionError(f"predictor answered malformed HTTP: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        reason = f": {exc}" if exc else ""
        self._fail(ConnectionError(f"predictor closed the connection before answering{reason}"))

    # --- httptools callbacks ----------------------------------------------------------------
    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        answer = Answer(self.parser.get_status_code(), self.headers, b"".join(self.body))
        self.keep_alive = self.parser.should_keep_alive()
        self.headers, self.body = {}, []
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(answer)

    # --- the client's side ------------------------------------------------------------------
    @property
    def open(self) -> bool:
        """Reusable: connected, not closing (closed by either side), keep-alive."""
        return self.keep_alive and self.transport is not None and not self.transport.is_closing()

    async def exchange(self, request: bytes) -> Answer:
        assert self.transport is not None and self.waiter is None
        self.answered = False
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return await self.waiter

    def _fail(self, exc: Exception) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        self.close()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class HttpClient:
    """HTTP/1.1 to one ``host:port`` (module docstring)."""

    def __init__(self, host: str, port: int, tls: ssl.SSLContext | None = None) -> None:
        self.host, self.port, self.tls = host, port, tls
        authority = f"[{host}]" if ":" in host else host
        default = 443 if tls else 80
        self._host_header = authority if port == default else f"{authority}:{port}"
        self._idle: list[_Connection] = []

    def head(self, method: str, target: str, headers: dict[str, str], length: int | None) -> bytes:
        """The request line and headers (``content-length`` when there is a body)."""
        lines = [f"{method} {target} HTTP/1.1", f"host: {self._host_header}"]
        for name, value in headers.items():
            if "\r" in value or "\n" in value or "\r" in name or "\n" in name:
                raise ValueError(f"header {name!r}: line breaks are not allowed")
            lines.append(f"{name}: {value}")
        if length is not None:
            lines.append(f"content-length: {length}")
        return (CRLF.join(lines) + CRLF + CRLF).encode("latin-1")

    async def request(
        self,
        method: str,
        target: str,
        headers: dict[str, str],
        body: bytes | None,
        timeout_s: float,
        fresh: bool = False,
    ) -> Answer:
        """``method target`` with ``headers`` and ``body``, answered within ``timeout_s``."""
        request = self.head(method, target, headers, None if body is None else len(body))
        if body:
            request += body
        async with asyncio.timeout(timeout_s):
            conn = None if fresh else self._reused()
            if conn is not None:
                try:
                    return await self._exchange(conn, request, keep=True)
                except ConnectionError:
                    if conn.answered:
                        raise  # the server saw the request: not sent twice
            return await self._exchange(await self._connect(), request, keep=not fresh)

    async def _exchange(self, conn: _Connection, request: bytes, keep: bool) -> Answer:
        try:
            answer = await conn.exchange(request)
        except BaseException:  # failed, timed out or cancelled: its answer may still come
            conn.close()
            raise
        if keep and conn.open:
            self._idle.append(conn)
        else:
            conn.close()
        return answer

    def _reused(self) -> _Connection | None:
        while self._idle:
            conn = self._idle.pop()
            if conn.open:
                return conn
        return None

    async def _connect(self) -> _Connection:
        _, conn = await asyncio.get_running_loop().create_connection(
            _Connection,
            self.host,
            self.port,
            ssl=self.tls,
            server_hostname=self.host if self.tls is not None else None,
        )
        return conn

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
