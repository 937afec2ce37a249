"""How :class:`~berth_transformer.features.redis_source.RedisSource` sends a read: to one Redis
server, or to the masters of a Redis Cluster.

Feast's cluster layout is its plain layout (``feast/infra/online_stores/redis.py`` builds the
same keys; with ``redis_type: redis_cluster`` it only swaps ``Redis`` for ``RedisCluster``):
entity keys carry no hash tag, so one read's entities spread over the cluster's slots.
:class:`ClusterTransport` groups a read's ``HMGET`` commands by the master that owns each
key's slot (redis-py's slot map), sends one pipelined write per master and reads the masters
concurrently. A MOVED/ASK/TRYAGAIN reply (resharding, failover) is sent again through redis-py's
cluster client, which follows the redirection and updates the slot map. A master that cannot
be reached (killed, failing over) or a ``CLUSTERDOWN`` reply fails the read at once -- the
transformer's 503 -- and fetches the slot map again in the background (one fetch at a time, at
most every ``REFRESH_S``, never on a request's path: a fetch per failed read would swamp the
event loop exactly while the cluster fails over), so the reads after a replica took over go
to it, without a restart.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any, Protocol

import redis.exceptions

from berth.observability import get_logger
from berth_transformer.features import feast_compat
from berth_transformer.features.redis_codec import Command, Reply

log = get_logger(__name__)
REFRESH_S = 0.25  # the slot map is fetched again at most this often after failures

_RECONNECT = (redis.exceptions.ConnectionError, ConnectionError)
# Node-level failures: the node is gone or the topology changed under us.
_TOPOLOGY = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)
_REDIRECT = (redis.exceptions.AskError, redis.exceptions.TryAgainError)  # MovedError is an AskError


class Transport(Protocol):
    """Sends a read's commands (one pipelined write per server) and returns the replies in
    command order."""

    async def run(self, commands: Sequence[Command]) -> list[Reply]: ...

    async def close(self) -> None: ...


async def roundtrip(conn: Any, commands: Sequence[Command], errors: bool = False) -> list[Any]:
    """Every command in one write on ``conn``, then its replies in order. ``errors``: an error
    reply (MOVED, ASK, CLUSTERDOWN ...) is returned in its place and the later replies are
    still read. Any other failure drops the connection, so no reply is ever read out of order."""
    try:
        await conn.send_packed_command(b"".join(c.packed for c in commands), check_health=False)
        if not errors:
            return [await conn.read_response() for _ in commands]
        replies: list[Any] = []
        for _ in commands:
            try:
                replies.append(await conn.read_response())
            except redis.exceptions.ResponseError as exc:
                replies.append(exc)
        return replies
    except BaseException:  # replies may be left on the socket (or cancelled): drop it
        await conn.disconnect()
        raise


class PlainTransport:
    """One Redis server: the whole read in one write on one idle connection of its own.

    The connections are made by the client's pool (its TLS, ACL user and database) but kept
    here, as a stack of idle ones: redis-py's ``get_connection``/``release`` take a lock,
    record connection-count metrics and probe the socket on every call, about a tenth of a
    read's CPU. A read that fails on a broken connection (Redis restarted) drops every idle
    one, all as stale as it is, and is sent once more, at once, on a new connection."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._idle: list[Any] = []  # connected, nothing unread (a failed read drops its own)

    async def run(self, commands: Sequence[Command]) -> list[Reply]:
        try:
            return await self._roundtrip(commands)
        except _RECONNECT:
            await self._drop_idle()
            return await self._roundtrip(commands)

    async def _roundtrip(self, commands: Sequence[Command]) -> list[Reply]:
        conn = self._idle.pop() if self._idle else self._client.connection_pool.make_connection()
        replies = await roundtrip(conn, commands)  # connects a new one; a failure drops it
        self._idle.append(conn)
        return replies

    async def _drop_idle(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            await conn.disconnect()

    async def close(self) -> None:
        await self._drop_idle()
        await self._client.aclose()


class ClusterTransport:
    """A Redis Cluster: one pipelined write per master, masters read concurrently."""

    def __init__(self, client: Any) -> None:
        self._client = client  # redis.asyncio.RedisCluster
        self._refresh: asyncio.Task[None] | None = None
        self._refreshed_at = 0.0

    async def run(self, commands: Sequence[Command]) -> list[Reply]:
        client = self._client
        try:
            await client.initialize()  # the first read (or after redis-py asked): the slot map
            groups: dict[str, tuple[Any, list[int]]] = {}
            for i, command in enumerate(commands):
                node = client.nodes_manager.get_node_from_slot(command.slot)
                groups.setdefault(node.name, (node, []))[1].append(i)
        except redis.exceptions.RedisClusterException as exc:  # no reachable node, slot uncovered
            self._topology_changed()
            raise redis.exceptions.ConnectionError(f"redis cluster: {exc}") from exc
        replies: list[Any] = [None] * len(commands)
        outcomes = await asyncio.gather(
            *(self._node(node, commands, idx, replies) for node, idx in groups.values()),
            return_exceptions=True,
        )
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        for i, reply in enumerate(replies):
            if isinstance(reply, _REDIRECT):  # redis-py follows it and fixes its slot map
                replies[i] = await client.execute_command("HMGET", *commands[i].args)
            elif isinstance(reply, BaseException):
                if isinstance(reply, redis.exceptions.ClusterDownError):
                    self._topology_changed()
                raise reply
        return replies

    async def _node(
        self, node: Any, commands: Sequence[Command], idx: list[int], replies: list[Any]
    ) -> None:
        batch = [commands[i] for i in idx]
        try:
            try:
                got = await self._roundtrip(node, batch)
            except _RECONNECT:  # a pooled connection broke (the node restarted): once more
                got = await self._roundtrip(node, batch)
        except _TOPOLOGY:
            node.update_active_connections_for_reconnect()
            await node.disconnect_free_connections()
            self._topology_changed()
            raise
        for i, reply in zip(idx, got, strict=True):
            replies[i] = reply

    def _topology_changed(self) -> None:
        """Fetch the slot map again in the background: one fetch at a time, at most every
        ``REFRESH_S`` (the failing reads keep asking until a fetch sees the new owners)."""
        if self._refresh is not None and not self._refresh.done():
            return
        now = time.monotonic()
        if now - self._refreshed_at < REFRESH_S:
            return
        self._refreshed_at = now
        self._refresh = asyncio.get_running_loop().create_task(self._reload())

    async def _reload(self) -> None:
        try:
            await self._client.nodes_manager.initialize()
        except Exception as exc:  # a failover still under way: the next failure asks again
            log.warning("redis cluster slot map not refreshed", error=f"{type(exc).__name__}")

    @staticmethod
    async def _roundtrip(node: Any, batch: list[Command]) -> list[Any]:
        conn = node.acquire_connection()
        try:
            await node.disconnect_if_needed(conn)
            return await roundtrip(conn, batch, errors=True)
        finally:
            node.release(conn)

    async def close(self) -> None:
        if self._refresh is not None:
            self._refresh.cancel()
        await self._client.aclose()


def open_transport(online_store: Any) -> Transport:
    """A transport on its own redis-py client for Feast's ``connection_string`` (TLS, ACL user
    and password included) and ``redis_type``: no backoff and no retry loop inside redis-py
    (a failed read is the caller's 503 at once), a broken connection replaced at once."""
    import redis.asyncio
    from feast.infra.online_stores.redis import RedisType
    from redis.asyncio.cluster import ClusterNode
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    nodes, params = feast_compat.parse_connection_string(online_store.connection_string)
    if online_store.redis_type == RedisType.redis_cluster:
        params.pop("db", None)
        startup = [ClusterNode(node["host"], int(node["port"])) for node in nodes]
        return ClusterTransport(
            redis.asyncio.RedisCluster(startup_nodes=startup, retry=Retry(NoBackoff(), 0), **params)
        )
    client = redis.asyncio.Redis(
        host=nodes[0]["host"], port=int(nodes[0]["port"]), retry=Retry(NoBackoff(), 0), **params
    )
    return PlainTransport(client)
