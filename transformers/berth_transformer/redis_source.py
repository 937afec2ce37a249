"""Online features straight from Feast's Redis layout: one pipelined write, no SDK per request.

Feast's Redis online store keeps one hash per entity key (``serialize_entity_key(key) +
project``, shared by every view of that entity); each feature is a field
``mmh3("<view>:<feature>")`` holding a serialized ``feast.types.Value`` and ``_ts:<view>`` holds
the view's event time as a serialized ``Timestamp``. :class:`RedisSource` sends one ``HMGET``
per distinct entity (all the views of that entity in one command, where Feast sends one per
view) in one pipelined write per server (:mod:`berth_transformer.redis_transport`: one Redis,
or each master of a Redis Cluster, concurrently) and decodes the replies straight into the value and
timestamp matrices that :func:`berth_transformer.features.apply_policies` takes.

Keys and field names come from Feast's own ``RedisOnlineStore`` helpers, computed once per
entity and cached; what the source skips is the SDK's per-request work (registry lookups,
entity-key protos, ``GetOnlineFeaturesResponse``, ``to_dict``): about 7x less time per read.
:func:`plan_for` decides at start whether a FeatureService can be read this way (plain Redis
or Redis Cluster, one join key per view, on-demand views that pass request fields through
unchanged) and says why not otherwise; the transformer then keeps Feast's SDK.

A connection that broke (Redis restarted) is replaced once, at once; a second failure is the
caller's 503. Any failure mid-pipeline drops that connection, so no reply is ever read out of
order. TLS and ACL user/password come from Feast's connection string (``ssl=true``,
``ssl_ca_certs=...``, ``username=...``, ``password=...``), as Feast passes them to redis-py.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

import numpy as np
from redis.crc import key_slot

if TYPE_CHECKING:
    from feast import FeatureStore

    from berth_transformer.features import ServedFeature

_F32 = struct.Struct("<f").unpack_from
_F64 = struct.Struct("<d").unpack_from
# feast.types.Value oneof tags: int32_val=3, int64_val=4 (varint), double_val=5 (fixed64),
# float_val=6 (fixed32), bool_val=7 (varint). Anything else goes through the proto class.
_INT32, _INT64, _DOUBLE, _FLOAT, _BOOL = 0x18, 0x20, 0x29, 0x35, 0x38
_KEY_CACHE = 65_536


def _varint(buf: bytes, pos: int) -> int:
    result = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result
        shift += 7


def decode_value(buf: bytes | None) -> float:
    """A serialized ``feast.types.Value`` holding one number -> float; NaN when absent/null."""
    if not buf:
        return math.nan
    tag = buf[0]
    if tag == _FLOAT:
        return float(_F32(buf, 1)[0])
    if tag == _DOUBLE:
        return float(_F64(buf, 1)[0])
    if tag in (_INT64, _INT32, _BOOL):
        value = _varint(buf, 1)
        return float(value - (1 << 64) if value >= 1 << 63 else value)
    from feast.protos.feast.types.Value_pb2 import Value

    message = Value.FromString(buf)
    kind = message.WhichOneof("val")
    return math.nan if kind in (None, "null_val") else float(getattr(message, kind))


def decode_seconds(buf: bytes | None) -> float:
    """A serialized ``google.protobuf.Timestamp`` -> its seconds (0 when absent)."""
    if not buf or buf[0] != 0x08:
        return 0.0
    return float(_varint(buf, 1))


@dataclass(frozen=True)
class EntityPlan:
    """One HMGET per distinct value of ``join_key``: its fields fill ``columns`` of the matrix,
    the ``_ts:<view>`` fields (one per view, after the features) fill the stamps."""

    join_key: str
    fields: tuple[bytes, ...]
    columns: tuple[int, ...]  # matrix column of each feature field, in field order
    ts_columns: tuple[tuple[int, ...], ...]  # per view: the matrix columns it stamps


@dataclass(frozen=True)
class SourcePlan:
    entities: tuple[EntityPlan, ...]
    request_columns: tuple[tuple[int, str], ...]  # (matrix column, request field)
    width: int


class Command(NamedTuple):
    """One ``HMGET``: its RESP bytes, the key's hash slot (Redis Cluster), key and fields."""

    packed: bytes
    slot: int
    args: tuple[bytes, ...]


Reply = list[bytes | None]


class Transport(Protocol):
    """Sends a read's commands (one pipelined write per server) and returns the replies in
    command order."""

    async def run(self, commands: Sequence[Command]) -> list[Reply]: ...

    async def close(self) -> None: ...


class RedisSource:
    """``await fetch(rows) -> (values float64 [n, F] with NaN for missing, stamps [n, F])``."""

    def __init__(self, transport: Transport, plan: SourcePlan, key_of: Any) -> None:
        self.transport = transport
        self._plan = plan
        self._key_of = key_of  # (join_key, value) -> the entity's Redis key
        self._commands: dict[tuple[int, Any], Command] = {}

    def _command(self, index: int, entity: EntityPlan, value: Any) -> Command:
        """``HMGET <entity key> <fields...>`` (RESP bytes and hash slot), cached per entity."""
        cached = self._commands.get((index, value))
        if cached is None:
            key = self._key_of(entity.join_key, value)
            args = (b"HMGET", key, *entity.fields)
            packed = b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)
            cached = Command(packed, key_slot(key), args[1:])
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
            decoded = np.array([[decode_value(b) for b in reply[:k]] for reply in block])
            seconds = np.array([[decode_seconds(b) for b in reply[k:]] for reply in block])
            if len(distinct) == n:
                picked, picked_ts = decoded, seconds
            else:
                where = {value: i for i, value in enumerate(distinct)}
                index_rows = np.fromiter((where[v] for v in ids), np.intp, n)
                picked, picked_ts = decoded[index_rows], seconds[index_rows]
            values[:, entity.columns] = picked
            for v, cols in enumerate(entity.ts_columns):
                stamps[:, cols] = picked_ts[:, v : v + 1]
        for column, field in plan.request_columns:
            values[:, column] = np.asarray(rows[field], dtype=np.float64)
        return values, stamps

    async def close(self) -> None:
        await self.transport.close()


def plan_for(
    store: FeatureStore, service_name: str, features: Sequence[ServedFeature]
) -> SourcePlan | str:
    """The read plan for ``features`` (the FeatureService's columns, in order), or the reason
    the service needs Feast's SDK path."""
    from feast.infra.online_stores.redis import RedisOnlineStore, RedisType, _versioned_fv_name

    config = store.config
    online = store._get_provider().online_store
    if not isinstance(online, RedisOnlineStore):
        return f"online store is {type(online).__name__}, not Redis"
    if config.online_store.redis_type not in (RedisType.redis, RedisType.redis_cluster):
        kind = config.online_store.redis_type.value
        return f"redis_type {kind} (plain redis and redis_cluster are direct)"

    batch = {view.name: view for view in store.list_feature_views()}
    by_key: dict[str, list[tuple[int, ServedFeature]]] = {}
    request_columns: list[tuple[int, str]] = []
    why_not = _why_not_passthrough(store, {f.view for f in features if f.view not in batch})
    if why_not:
        return why_not
    for j, feature in enumerate(features):
        view = batch.get(feature.view)
        if view is None:  # a pass-through on-demand view: the request field of that name
            request_columns.append((j, feature.name))
            continue
        if len(view.join_keys) != 1:
            return f"view {view.name} has a composite entity key {view.join_keys}"
        by_key.setdefault(view.join_keys[0], []).append((j, feature))

    entities = []
    for join_key, columns in by_key.items():
        fields: list[bytes] = []
        views: dict[str, list[int]] = {}
        for j, feature in columns:
            fv_name = _versioned_fv_name(batch[feature.view], config)
            _, hset_keys = online._generate_hset_keys_for_features(
                batch[feature.view], [feature.name], fv_name_override=fv_name
            )
            key = hset_keys[0]
            fields.append(key if isinstance(key, bytes) else key.encode())
            views.setdefault(fv_name, []).append(j)
        fields += [f"_ts:{fv_name}".encode() for fv_name in views]
        entities.append(
            EntityPlan(
                join_key=join_key,
                fields=tuple(fields),
                columns=tuple(j for j, _ in columns),
                ts_columns=tuple(tuple(cols) for cols in views.values()),
            )
        )
    return SourcePlan(tuple(entities), tuple(request_columns), len(features))


def _why_not_passthrough(store: FeatureStore, views: set[str]) -> str | None:
    """None when every on-demand view in ``views`` returns its request fields unchanged, under
    their own names (probed with distinct values); else why one does not."""
    for name in sorted(views):
        try:
            odfv = store.get_on_demand_feature_view(name)
        except Exception:
            return f"view {name} is neither a feature view nor an on-demand view"
        if odfv.source_feature_view_projections:
            return f"on-demand view {name} reads feature views"
        fields = [f.name for s in odfv.source_request_sources.values() for f in s.schema]
        outputs = [f.name for f in odfv.features]
        if odfv.mode != "python" or not set(outputs) <= set(fields):
            return f"on-demand view {name} computes features"
        probe = {field: [i + 0.25] for i, field in enumerate(fields)}
        udf = getattr(odfv.feature_transformation, "udf", None)
        if udf is None:
            return f"on-demand view {name} has no python transformation"
        try:
            result = udf(dict(probe))
        except Exception as exc:
            return f"on-demand view {name} failed a probe: {type(exc).__name__}"
        if any(list(result.get(o, [])) != probe[o] for o in outputs):
            return f"on-demand view {name} transforms its inputs"
    return None


def open_source(store: FeatureStore, plan: SourcePlan) -> RedisSource:
    """A source on its own redis-py client for Feast's connection string and ``redis_type``
    (see :func:`berth_transformer.redis_transport.open_transport`)."""
    from feast.infra.online_stores.redis import RedisOnlineStore
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.type_map import python_values_to_proto_values
    from feast.value_type import ValueType

    from berth_transformer.redis_transport import open_transport

    types = {entity.join_key: entity.value_type for entity in store.list_entities()}
    online = store._get_provider().online_store
    assert isinstance(online, RedisOnlineStore), "plan_for() first"

    def key_of(join_key: str, value: Any) -> bytes:
        """Feast's own Redis key of one entity (called once per entity: the source caches)."""
        kind = types.get(join_key, ValueType.UNKNOWN)
        if kind == ValueType.UNKNOWN:
            kind = ValueType.STRING if isinstance(value, str) else ValueType.INT64
        proto = EntityKey(
            join_keys=[join_key], entity_values=python_values_to_proto_values([value], kind)
        )
        key: bytes = online._generate_redis_keys_for_entities(store.config, [proto])[0]
        return key

    return RedisSource(open_transport(store.config.online_store), plan, key_of)
