"""``PlainTransport`` on a real redis-server: its own idle connections, reused, and replaced
at once after Redis restarts."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from berth.stack.redis_server import RedisServer
from berth_transformer.features.redis_codec import hmget
from berth_transformer.features.redis_transport import PlainTransport, open_transport

pytestmark = [pytest.mark.integration]


@pytest.fixture
def redis() -> RedisServer:
    if not RedisServer.available():
        pytest.skip("redis-server binary not found (apt-get install redis-server)")
    server = RedisServer().start()
    yield server  # type: ignore[misc]
    server.close()


def _transport(server: RedisServer) -> PlainTransport:
    store = SimpleNamespace(connection_string=server.connection_string, redis_type="redis")
    transport = open_transport(store)
    assert isinstance(transport, PlainTransport)
    return transport


COMMANDS = [hmget(b"k%d" % i, [b"f"]) for i in range(3)]


def test_reads_reuse_their_connections_and_survive_a_redis_restart(redis: RedisServer) -> None:
    async def scenario() -> None:
        transport = _transport(redis)
        try:
            concurrent = await asyncio.gather(*(transport.run(COMMANDS) for _ in range(4)))
            assert concurrent == [[[None]] * 3] * 4
            made = len(transport._idle)
            assert 1 <= made <= 4
            for _ in range(20):  # one at a time: the same connection again and again
                assert await transport.run(COMMANDS) == [[None]] * 3
            assert len(transport._idle) == made
            redis.stop()
            redis.start()  # same port: every idle connection is now a dead socket
            assert await transport.run(COMMANDS) == [[None]] * 3
            assert len(transport._idle) == 1  # the stale ones were dropped, not retried
        finally:
            await transport.close()
        assert transport._idle == []

    asyncio.run(scenario())
