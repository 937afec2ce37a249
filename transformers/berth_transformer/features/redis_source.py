"""Online features straight from Feast's Redis layout: one pipelined write, no SDK per request.

Feast's Redis online store keeps one hash per entity key (``serialize_entity_key(key) +
project``, shared by every view of that entity); each feature is a field
``mmh3("<view>:<feature>")`` holding a serialized ``feast.types.Value`` and ``_ts:<view>`` holds
the view's event time as a serialized ``Timestamp``. :class:`RedisSource` sends one ``HMGET``
per distinct entity (all the views of that entity in one command, where Feast sends one per
view: :mod:`.redis_plan`) in one pipelined write per server (:mod:`.redis_transport`: one
Redis, or each master of a Redis Cluster, concurrently) and decodes the replies
(:mod:`.redis_codec`, through a bounded cache keyed by the reply bytes) straight into the
value and timestamp matrices that :func:`~berth_transformer.features.policies.apply_policies`
takes.

Keys and field names come from Feast's own ``RedisOnlineStore`` helpers (:mod:`.feast_compat`),
computed once per entity and cached; what the source skips is the SDK's per-request work
(registry lookups, entity-key protos, ``GetOnlineFeaturesResponse``, ``to_dict``): about 7x
less time per read.

A connection that broke (Redis restarted) is replaced once, at once; a second failure is the
caller's 503. Any failure mid-pipeline drops that connection, so no reply is ever read out of
order. TLS and ACL user/password come from Feast's connection string (``ssl=true``,
``ssl_ca_certs=...``, ``username=...``, ``password=...``), as Feast passes them to redis-py.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from berth_transformer.features import feast_compat
from berth_transformer.features.redis_codec import Command, DecodeCache, hmget
from berth_transformer.features.redis_plan import EntityPlan, SourcePlan
from berth_transformer.features.redis_transport import Transport, open_transport

if TYPE_CHECKING:
    from feast import FeatureStore

_KEY_CACHE = 65_536


class RedisSource:
    """``await fetch(rows) -> (values float64 [n, F] with NaN for missing, stamps [n, F])``."""

    def __init__(
        self,
        transport: Transport,
        plan: SourcePlan,
        key_of: Callable[[str, Any], bytes],
        decoded: DecodeCache | None = None,
    ) -> None:
        self.transport = transport
        self._plan = plan
        self._key_of = key_of  # (join_key, value) -> the entity's Redis key
        self._commands: dict[tuple[int, Any], Command] = {}
        self.decoded = DecodeCache() if decoded is None else decoded

    def _command(self, index: int, entity: EntityPlan, value: Any) -> Command:
        """``HMGET <entity key> <fields...>`` (RESP bytes and hash slot), cached per entity."""
        cached = self._commands.get((index, value))
        if cached is None:
            cached = hmget(self._key_of(entity.join_key, value), entity.fields)
            if len(self._commands) >= _KEY_CACHE:
                self._commands.clear()
            self._commands[(index, value)] = cached
        return cached

    async def fetch(self, rows: Mapping[str, Sequence[Any]]) -> tuple[np.ndarray, np.ndarray]:
        plan = self._plan
        n = len(next(iter(rows.values())))
        commands: list[Command] = []
        layout = []
        for index, entity in enumerate(plan.entities):
            ids = rows[entity.join_key]
            distinct = list(dict.fromkeys(ids))
            commands += [self._command(index, entity, value) for value in distinct]
            layout.append((entity, ids, distinct))
        replies = await self.transport.run(commands)

        values = np.full((n, plan.width), np.nan)
        stamps = np.zeros((n, plan.width))
        offset = 0
        for entity, ids, distinct in layout:
            block = replies[offset : offset + len(distinct)]
            offset += len(distinct)
            k = len(entity.columns)
            decoded = self.decoded.decode(block, k)
            if len(distinct) != n:
                where = {value: i for i, value in enumerate(distinct)}
                decoded = decoded[np.fromiter((where[v] for v in ids), np.intp, n)]
            values[:, entity.columns] = decoded[:, :k]
            for v, cols in enumerate(entity.ts_columns):
                stamps[:, cols] = decoded[:, k + v : k + v + 1]
        for column, field in plan.request_columns:
            values[:, column] = np.asarray(rows[field], dtype=np.float64)
        return values, stamps

    async def close(self) -> None:
        await self.transport.close()


def open_source(store: FeatureStore, plan: SourcePlan) -> RedisSource:
    """A source on its own redis-py client for Feast's connection string and ``redis_type``
    (see :func:`~berth_transformer.features.redis_transport.open_transport`)."""
    from feast.infra.online_stores.redis import RedisOnlineStore
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.type_map import python_values_to_proto_values
    from feast.value_type import ValueType

    types = {entity.join_key: entity.value_type for entity in store.list_entities()}
    online = feast_compat.online_store(store)
    assert isinstance(online, RedisOnlineStore), "plan_for() first"

    def key_of(join_key: str, value: Any) -> bytes:
        """Feast's own Redis key of one entity (called once per entity: the source caches)."""
        kind = types.get(join_key, ValueType.UNKNOWN)
        if kind == ValueType.UNKNOWN:
            kind = ValueType.STRING if isinstance(value, str) else ValueType.INT64
        proto = EntityKey(
            join_keys=[join_key], entity_values=python_values_to_proto_values([value], kind)
        )
        return feast_compat.redis_key(online, store, proto)

    return RedisSource(open_transport(store.config.online_store), plan, key_of)
