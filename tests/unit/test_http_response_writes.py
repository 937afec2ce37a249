"""Each answer leaves in one send: uvicorn's protocol (Berth's :func:`protocol_class`) driven
with real request bytes; the transport records what the protocol writes."""

from __future__ import annotations

import asyncio
from typing import Any

import uvicorn
from starlette.responses import PlainTextResponse
from uvicorn.server import ServerState

from berth.serving.http_limits import protocol_class

REQUEST = b"GET /x HTTP/1.1\r\nHost: t\r\n\r\n"


class RecordingTransport(asyncio.Transport):
    """What a socket transport would send, one entry per ``write``."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: Any) -> None:
        self.writes.append(bytes(data))

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8080)}.get(name)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None: ...


async def _serve(app: Any, request: bytes = REQUEST, turns: int = 20) -> RecordingTransport:
    config = uvicorn.Config(app, log_config=None)
    config.load()
    protocol = protocol_class(32 * 1024, 100, 10.0)(config, ServerState(), app_state={})
    transport = RecordingTransport()
    protocol.connection_made(transport)
    protocol.data_received(request)
    for _ in range(turns):
        await asyncio.sleep(0.005)
    protocol.connection_lost(None)
    return transport


def test_a_whole_response_is_one_write() -> None:
    transport = asyncio.run(_serve(PlainTextResponse("scored")))
    assert len(transport.writes) == 1
    (sent,) = transport.writes
    assert sent.startswith(b"HTTP/1.1 200 OK\r\n") and sent.endswith(b"\r\n\r\nscored")


def test_two_keep_alive_requests_are_one_write_each() -> None:
    transport = asyncio.run(_serve(PlainTextResponse("ok"), REQUEST * 2))
    assert [w.split(b"\r\n", 1)[0] for w in transport.writes] == [b"HTTP/1.1 200 OK"] * 2
    assert all(w.endswith(b"\r\n\r\nok") for w in transport.writes)


async def _streaming(scope: Any, receive: Any, send: Any) -> None:
    """Headers, then the body a while later (a stream): the headers must not wait for it."""
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await asyncio.sleep(0.03)
    await send({"type": "http.response.body", "body": b"a", "more_body": True})
    await send({"type": "http.response.body", "body": b"b"})


def test_headers_of_a_stream_leave_on_the_next_loop_turn() -> None:
    transport = asyncio.run(_serve(_streaming))
    head, *chunks = transport.writes
    assert head.startswith(b"HTTP/1.1 200 OK\r\n") and head.endswith(b"\r\n\r\n")
    assert b"".join(chunks) == b"1\r\na\r\n1\r\nb\r\n0\r\n\r\n"
