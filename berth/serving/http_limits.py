"""HTTP/1.1 connection limits uvicorn does not have: header size and count, a header-read
timeout, and a lingering close; and each answer in one send.

uvicorn's httptools protocol buffers a request's headers without bound (10k headers, an 8 MB
header or a 64 MB unfinished one are all read) and gives a client all the time it wants to
send them (a slowloris connection stays open). :func:`protocol_class` returns its protocol
with, per request:

- header bytes (request line included) over ``max_header_bytes`` or more than
  ``max_headers`` headers: ``431 Request Header Fields Too Large``, connection closed;
- headers not complete ``header_timeout_s`` after the connection opened or the request's
  first byte: ``408 Request Timeout``, connection closed;
- a lingering close: when the server closes a connection whose request body is still
  arriving (a 413 to a client that sent ``Connection: close``, as ``urllib`` does), it stops
  writing, reads and discards what the client still sends for at most ``linger_s``, and only
  then closes; closing with unread data would reset the connection, and a client that sends
  its whole body before reading (``http.client``) would see ``ConnectionResetError`` instead of
  the 413. nginx's ``lingering_close`` does the same.

And one send per answer: uvicorn writes a response's status line and headers, then its body,
as two ``write`` calls, so two ``send`` syscalls and two TCP segments, each waking the peer
(the transformer's predictor client, on the hop). The header block waits for the body's first
chunk and leaves with it (:class:`_ResponseTransport`).
"""

from __future__ import annotations

import asyncio
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from berth.observability import get_logger

log = get_logger(__name__)


class _HeadersTooLarge(Exception):
    pass


def _response(status: bytes, message: bytes) -> bytes:
    return (
        b"HTTP/1.1 " + status + b"\r\ncontent-type: text/plain; charset=utf-8\r\n"
        b"content-length: "
        + str(len(message)).encode()
        + b"\r\nconnection: close\r\n\r\n"
        + message
    )


class _ResponseTransport:
    """The transport a request's response cycle writes to.

    - One send per answer: uvicorn writes the status line and headers, then the body, as two
      ``write`` calls; each is a ``send`` syscall and a TCP segment, and the peer wakes for
      each. The header block is held and sent with the body's first chunk (at the latest on
      the loop's next turn, for a response whose body comes later).
    - ``close()`` lingers while the request body is still arriving (module docstring).
    """

    def __init__(
        self, protocol: LimitedHttpProtocol, cycle: Any, transport: asyncio.Transport
    ) -> None:
        self._protocol = protocol
        self._cycle = cycle  # this request's (a pipelined next one may be the protocol's)
        self._transport = transport
        self._held: bytes | None = None  # the header block, until the body's first chunk
        self._started = False  # the header block went by (later writes are body chunks)

    def write(self, data: bytes) -> None:
        held = self._held
        if held is not None:
            self._held = None
            self._transport.write(held + data)
            return
        if not self._started and self._cycle.response_started:
            self._started = True  # uvicorn sets response_started, then writes the headers
            self._held = data
            self._protocol.loop.call_soon(self.flush)
            return
        self._transport.write(data)  # ``100 Continue`` before the response, body chunks

    def flush(self) -> None:
        if self._held is not None:
            held, self._held = self._held, None
            self._transport.write(held)

    def close(self) -> None:
        self.flush()
        self._protocol.close_lingering()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class LimitedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the limits of the module docstring."""

    max_header_bytes = 32 * 1024
    max_headers = 100
    header_timeout_s = 10.0
    linger_s = 5.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_headers = True  # bytes now received belong to a request's headers
        self._header_bytes = 0
        self._header_count = 0
        self._parsed_bytes = 0  # request line and headers parsed so far
        self._header_timer: asyncio.TimerHandle | None = None
        self._body_pending = False  # headers read, the body not yet complete
        self._lingering: asyncio.TimerHandle | None = None
        self._too_large = False
        self.last_active = 0.0  # loop time of the last byte in or response out

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.last_active = self.loop.time()
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self._lingering is not None:
            self._lingering.cancel()
        super().connection_lost(exc)

    def _arm(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_late)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_late(self) -> None:
        self._header_timer = None
        if self._in_headers and not self.transport.is_closing():
            self._refuse(b"408 Request Timeout", b"request headers not received in time")

    def _refuse(self, status: bytes, message: bytes) -> None:
        self._disarm()
        self.transport.write(_response(status, message))
        self._body_pending = True  # whatever else the client sends is discarded
        self.close_lingering()

    def data_received(self, data: bytes) -> None:
        if self._lingering is not None:
            return  # discarded: the response is sent, the socket closes once the client is done
        self.last_active = self.loop.time()
        if self._in_headers:
            self._header_bytes += len(data)  # bytes of headers still unfinished after the feed
        self._too_large = False
        try:  # uvicorn's, which would answer a limit raised in a parser callback with 400
            self._unset_keepalive_if_required()
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
        except httptools.HttpParserError:
            if not self._too_large:
                self.logger.warning("Invalid HTTP request received.")
                self.send_400_response("Invalid HTTP request received.")
                return
        if self._too_large or (self._in_headers and self._header_bytes > self.max_header_bytes):
            self._refuse(
                b"431 Request Header Fields Too Large",
                f"request headers over {self.max_header_bytes} bytes or "
                f"{self.max_headers} fields".encode(),
            )

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm()

    def _count(self, size: int, fields: int = 0) -> None:
        self._parsed_bytes += size
        self._header_count += fields
        if self._parsed_bytes > self.max_header_bytes or self._header_count > self.max_headers:
            self._too_large = True
            raise _HeadersTooLarge()  # stops the parser: feed_data raises

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4, 1)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._disarm()
        self._in_headers = False
        self._body_pending = True
        self._header_bytes = self._header_count = self._parsed_bytes = 0
        super().on_headers_complete()
        if self.cycle is not None:
            cycle = self.cycle
            cycle.transport = _ResponseTransport(self, cycle, self.transport)  # type: ignore[assignment]

    def on_response_complete(self) -> None:
        self.last_active = self.loop.time()
        super().on_response_complete()

    def close_if_idle(self, idle_s: float) -> bool:
        """At a drain: close this keep-alive connection when no request is on it and none has
        come for ``idle_s`` (one arriving right now would be reset, not refused)."""
        idle = self.cycle is None or self.cycle.response_complete
        if idle and self._in_headers and self.loop.time() - self.last_active >= idle_s:
            self.transport.close()
            return True
        return False

    def on_message_complete(self) -> None:
        self._in_headers = True  # the next bytes start the next request
        self._body_pending = False
        super().on_message_complete()

    def close_lingering(self) -> None:
        """Close now when the request was read whole; else stop writing, discard what the
        client still sends, close once it is done or after ``linger_s``."""
        transport = self.transport
        if transport.is_closing() or self._lingering is not None:
            return
        if not self._body_pending or not transport.can_write_eof():
            transport.close()
            return
        transport.write_eof()
        self.flow.resume_reading()
        self._lingering = self.loop.call_later(self.linger_s, transport.close)

    def eof_received(self) -> None:
        if self._lingering is not None:
            self.transport.close()


def protocol_class(
    max_header_bytes: int, max_headers: int, header_timeout_s: float, linger_s: float = 5.0
) -> type[LimitedHttpProtocol]:
    """The protocol with these limits (uvicorn's ``Config(http=...)`` takes a class)."""
    return type(
        "BerthHttpProtocol",
        (LimitedHttpProtocol,),
        {
            "max_header_bytes": max_header_bytes,
            "max_headers": max_headers,
            "header_timeout_s": header_timeout_s,
            "linger_s": linger_s,
        },
    )
