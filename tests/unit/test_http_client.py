"""The REST hop's HTTP/1.1 client (berth_transformer.http_client) against real loopback servers
scripted at the byte level: keep-alive reuse, a connection the server closed while idle (sent
again on a new one), an answer cut short (never sent twice), deadlines, cancellation,
``connection: close``, chunked answers, malformed answers and refused connections."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator

import pytest
import uvloop

from berth.stack import LOOPBACK
from berth_transformer.http_client import HttpClient

OK = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nX-Echo: %d\r\ncontent-length: 2\r\n\r\nok"

Reader, Writer = asyncio.StreamReader, asyncio.StreamWriter
Script = Callable[["Server", asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class Server:
    """A loopback server running ``script`` per connection; ``requests`` counts the request
    heads read, ``connections`` the connections accepted, ``closed`` those the client closed."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.requests = self.connections = self.closed = 0
        self.port = 0

    async def __aenter__(self) -> Server:
        self.server = await asyncio.start_server(self._handle, LOOPBACK, 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.server.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.script(self, reader, writer)
        finally:
            writer.close()

    async def read_request(self, reader: asyncio.StreamReader) -> bytes | None:
        """One request (head and its content-length body); None when the client closed."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            self.closed += 1
            return None
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        body = await reader.readexactly(length)
        self.requests += 1
        return head + body


async def keep_alive(server: Server, reader: Reader, w: Writer) -> None:
    while (await server.read_request(reader)) is not None:
        w.write(OK % server.requests)
        await w.drain()


@pytest.fixture(params=["asyncio", "uvloop"], autouse=True)
def loop_kind(request: pytest.FixtureRequest) -> Iterator[None]:
    """Each test on asyncio's loop and on uvloop's (the servers' loop: its transports are not
    ``asyncio.Transport`` subclasses)."""
    if request.param == "asyncio":
        yield
        return
    before = asyncio.get_event_loop_policy()
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    try:
        yield
    finally:
        asyncio.set_event_loop_policy(before)


async def silent(server: Server, r: Reader, w: Writer) -> None:
    """Reads a request, never answers, and waits for the client to close."""
    await server.read_request(r)
    await server.read_request(r)


async def all_ok(client: HttpClient, calls: int) -> None:
    """``calls`` GETs in a row, each answered 200."""
    for _ in range(calls):
        assert (await client.request("GET", "/", {}, None, 2.0)).status == 200


def run(script: Script, test: Callable[[Server, HttpClient], Awaitable[None]]) -> Server:
    async def main() -> Server:
        async with Server(script) as server:
            client = HttpClient(LOOPBACK, server.port)
            try:
                await test(server, client)
            finally:
                await client.close()
            await asyncio.sleep(0.05)  # the server sees the client's closes
        return server

    return asyncio.run(main())


def test_sequential_requests_share_one_keep_alive_connection() -> None:
    async def test(server: Server, client: HttpClient) -> None:
        for i in range(1, 4):
            answer = await client.request("POST", "/infer", {"x-request-id": "r"}, b"abc", 2.0)
            assert (answer.status, answer.body, answer.headers["x-echo"]) == (200, b"ok", str(i))

    server = run(keep_alive, test)
    assert (server.connections, server.requests) == (1, 3)


def test_concurrent_requests_each_get_a_connection_then_pool() -> None:
    async def test(server: Server, client: HttpClient) -> None:
        calls = [client.request("GET", "/", {}, None, 2.0) for _ in range(3)]
        assert [a.status for a in await asyncio.gather(*calls)] == [200] * 3
        await client.request("GET", "/", {}, None, 2.0)

    server = run(keep_alive, test)
    assert (server.connections, server.requests) == (3, 4)


def test_the_request_bytes_are_what_the_caller_asked_for() -> None:
    seen: list[bytes] = []

    async def record(server: Server, r: Reader, w: Writer) -> None:
        request = await server.read_request(r)
        assert request is not None
        seen.append(request)
        w.write(OK % 1)
        await w.drain()

    async def test(server: Server, client: HttpClient) -> None:
        await client.request("POST", "/v2/models/m/infer", {"a": "1"}, b"\x00body", 2.0)

    server = run(record, test)
    assert seen == [
        b"POST /v2/models/m/infer HTTP/1.1\r\nhost: %s:%d\r\na: 1\r\ncontent-length: 5\r\n\r\n"
        % (LOOPBACK.encode(), server.port)
        + b"\x00body"
    ]


def test_an_idle_connection_the_server_closed_is_replaced_without_an_error() -> None:
    async def one_then_close(server: Server, r: Reader, w: Writer) -> None:
        if await server.read_request(r) is not None:
            w.write(OK % server.requests)
            await w.drain()
        # the server's keep-alive timeout: it closes without saying so

    server = run(one_then_close, lambda server, client: all_ok(client, 3))
    assert (server.connections, server.requests) == (3, 3)


def test_a_reused_connection_closed_before_answering_is_sent_again_once() -> None:
    async def drop_second(server: Server, r: Reader, w: Writer) -> None:
        first = server.connections == 1
        while await server.read_request(r) is not None:
            if first and server.requests == 2:
                return  # closed without a byte of answer (the keep-alive timeout's race)
            w.write(OK % server.requests)
            await w.drain()

    server = run(drop_second, lambda server, client: all_ok(client, 2))
    assert (server.connections, server.requests) == (2, 3)


def test_a_new_connection_closed_before_answering_is_an_error() -> None:
    async def drop(server: Server, r: Reader, w: Writer) -> None:
        await server.read_request(r)

    async def test(server: Server, client: HttpClient) -> None:
        with pytest.raises(ConnectionError, match="before answering"):
            await client.request("GET", "/", {}, None, 2.0)

    server = run(drop, test)
    assert (server.connections, server.requests) == (1, 1)


def test_an_answer_cut_short_is_an_error_and_is_not_sent_twice() -> None:
    async def half(server: Server, r: Reader, w: Writer) -> None:
        while await server.read_request(r) is not None:
            if server.requests == 1:
                w.write(OK % 1)
            else:
                w.write(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nok")
                await w.drain()
                return
            await w.drain()

    async def test(server: Server, client: HttpClient) -> None:
        await client.request("GET", "/", {}, None, 2.0)
        with pytest.raises(ConnectionError, match="closed the connection before answering"):
            await client.request("GET", "/", {}, None, 2.0)

    server = run(half, test)
    assert server.requests == 2


def test_a_deadline_ends_the_call_and_closes_its_connection() -> None:

    async def test(server: Server, client: HttpClient) -> None:
        with pytest.raises(TimeoutError):
            await client.request("GET", "/", {}, None, 0.2)
        assert client._idle == []

    server = run(silent, test)
    assert (server.requests, server.closed) == (1, 1)


def test_a_cancelled_call_closes_its_connection() -> None:

    async def test(server: Server, client: HttpClient) -> None:
        call = asyncio.ensure_future(client.request("GET", "/", {}, None, 5.0))
        await asyncio.sleep(0.1)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        assert client._idle == []

    server = run(silent, test)
    assert server.closed == 1


def test_connection_close_in_the_answer_and_fresh_calls_are_not_pooled() -> None:
    async def closing(server: Server, r: Reader, w: Writer) -> None:
        while await server.read_request(r) is not None:
            close = b"connection: close\r\n" if server.requests == 1 else b""
            w.write(b"HTTP/1.1 200 OK\r\n" + close + b"content-length: 0\r\n\r\n")
            await w.drain()

    async def test(server: Server, client: HttpClient) -> None:
        await client.request("GET", "/", {}, None, 2.0)
        assert client._idle == []
        await client.request("GET", "/", {}, None, 2.0, fresh=True)
        assert client._idle == []
        await client.request("GET", "/", {}, None, 2.0)
        await client.request("GET", "/", {}, None, 2.0)

    server = run(closing, test)
    assert (server.connections, server.requests) == (3, 4)


def test_a_chunked_answer_is_read_whole() -> None:
    async def chunked(server: Server, r: Reader, w: Writer) -> None:
        await server.read_request(r)
        w.write(b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 7\r\n")
        w.write(b"transfer-encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
        await w.drain()
        await server.read_request(r)

    async def test(server: Server, client: HttpClient) -> None:
        answer = await client.request("GET", "/", {}, None, 2.0)
        assert (answer.status, answer.body, answer.headers["retry-after"]) == (
            503,
            b"hello world",
            "7",
        )

    run(chunked, test)


def test_an_answer_that_is_not_http_is_a_connection_error() -> None:
    async def garbage(server: Server, r: Reader, w: Writer) -> None:
        await server.read_request(r)
        w.write(b"\x00\x00\x12\x04\x00\x00\x00\x00\x00")  # an HTTP/2 SETTINGS frame
        await w.drain()
        await server.read_request(r)

    async def test(server: Server, client: HttpClient) -> None:
        with pytest.raises(ConnectionError, match="malformed HTTP"):
            await client.request("GET", "/", {}, None, 2.0)

    run(garbage, test)


def test_a_header_with_a_line_break_is_refused_before_anything_is_sent() -> None:
    async def test(server: Server, client: HttpClient) -> None:
        with pytest.raises(ValueError, match="line breaks"):
            await client.request("GET", "/", {"x-request-id": "a\r\nx-admin: 1"}, None, 2.0)

    server = run(keep_alive, test)
    assert server.connections == 0


def test_a_refused_connection_is_an_os_error() -> None:
    async def main() -> None:
        async with Server(keep_alive) as server:
            port = server.port
        client = HttpClient(LOOPBACK, port)
        with pytest.raises(ConnectionRefusedError):
            await client.request("GET", "/", {}, None, 2.0)

    asyncio.run(main())
