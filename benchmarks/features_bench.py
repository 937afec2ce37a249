"""Feature read for one request of N candidates: Berth's path vs the Feast SDK vs raw Redis.

All readers get the same requests (one customer, N drivers, from the benchmark's pool) against
the same Redis, in interleaved rounds, one read at a time on one event loop:

* ``berth`` -- ``berth_transformer.features.FeatureReader.read``: what the transformer does
  per request (the direct Redis source: one pipelined HMGET per distinct entity, decoded
  into the model matrix; TTL check, fill). ``berth_feast_source`` is the same reader on
  Feast's async SDK (``BERTH_TRANSFORMER_FEATURE_SOURCE=feast``, used for other stores).
* ``feast_sdk`` -- ``FeatureStore.get_online_features(...).to_dict()``, synchronous: the
  baseline's (and KServe's Feast sample's) call. ``feast_sdk_async`` is its async twin.
* ``redis_floor`` -- redis-py, one pipeline of the very ``HMGET`` commands Feast sends (same
  keys, same hash fields), replies left as bytes: the cost of the network round trip and
  Redis itself, nothing else. ``redis_floor_async`` is the same through ``redis.asyncio``.

``berth_matches_feast_sdk`` checks that both Berth sources return the same matrix. The same
readers on a 3-master Redis Cluster come under ``cluster`` (``benchmarks.features_cluster``;
``benchmarks.features_read`` runs both).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np

from benchmarks import payloads
from benchmarks.workspace import Workspace

SERVICE = "driver_ranking_v1"
ENTITY_FIELDS = ("driver_id", "customer_id", "trip_distance_km", "pickup_hour")


def _columns(rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    return {key: [r[key] for r in rows] for key in ENTITY_FIELDS}


def feast_commands(
    store: Any, service: Any, rows: list[dict[str, Any]]
) -> list[tuple[bytes, list[Any]]]:
    """The ``(key, fields)`` HMGETs Feast's Redis store sends for ``rows`` (one per view and
    distinct entity), built with Feast's own key encoding."""
    from feast.infra.key_encoding_utils import serialize_entity_key
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value

    from berth_transformer.features import feast_compat

    version = store.config.entity_key_serialization_version
    project = store.config.project.encode()
    views = {v.name: v for v in store.list_feature_views()}
    commands = []
    for projection in service.feature_view_projections:
        view = views.get(projection.name)
        if view is None:  # on-demand: computed from the request, nothing stored
            continue
        fields: list[Any] = [
            feast_compat.mmh3_field(view.name, f.name) for f in projection.features
        ]
        fields.append(f"_ts:{view.name}")
        join_key = view.join_keys[0]
        for value in dict.fromkeys(r[join_key] for r in rows):
            key = EntityKey(join_keys=[join_key], entity_values=[Value(int64_val=value)])
            commands.append((serialize_entity_key(key, version) + project, fields))
    return commands


async def compare_reads(
    ws: Workspace, candidates: int = 10, reads: int = 400, rounds: int = 5, seed: int = 0
) -> dict[str, Any]:
    """p50/p90/p99 (ms) of each reader over ``reads`` reads each, and the ratios to the floor."""
    import redis
    import redis.asyncio

    from berth.artifact import read_metadata
    from berth.featurerepo import open_store

    store = open_store(ws.repo)
    service = store.get_feature_service(SERVICE)
    defaults = {f.name: f.default for f in read_metadata(ws.artifact).features}
    ranges = ws.entity_ranges()
    pool = payloads.ranking_requests(64, candidates, seed, ranges["drivers"], ranges["customers"])
    sync_client = redis.Redis(host="127.0.0.1", port=ws.redis.port)
    async_client = redis.asyncio.Redis(host="127.0.0.1", port=ws.redis.port)
    commands = [feast_commands(store, service, rows) for rows in pool]
    notes: list[str] = []

    readers = _baseline_readers(store, service, pool, commands, (sync_client, async_client))
    berth = _berth_reader(store, defaults, notes, "auto")
    berth_feast = _berth_reader(store, defaults, notes, "feast")
    if berth is not None and berth_feast is not None:
        readers["berth"] = berth(pool)
        readers["berth_feast_source"] = berth_feast(pool)

    latencies = await _interleaved(readers, len(pool), reads, rounds)
    result: dict[str, Any] = {
        "candidates": candidates,
        "reads_per_reader": reads,
        "redis_commands_per_read": len(commands[0]),
        "notes": notes,
    }
    for name, values in latencies.items():
        result[name] = _percentiles(values)
    if berth is not None and berth_feast is not None:
        result["berth_matches_feast_sdk"] = await _same_matrix(
            berth(pool), berth_feast(pool), len(pool)
        )
    sync_client.close()
    await async_client.aclose()
    return result


def _baseline_readers(
    store: Any, service: Any, pool: list[Any], commands: list[Any], clients: tuple[Any, Any]
) -> dict[str, Callable[[int], Any]]:
    """The floor (one pipelined HMGET per command, sync and async) and Feast's SDK."""
    sync_client, async_client = clients

    def floor(i: int) -> Any:
        with sync_client.pipeline(transaction=False) as pipe:
            for key, fields in commands[i]:
                pipe.hmget(key, fields)
            return pipe.execute()

    async def floor_async(i: int) -> Any:
        async with async_client.pipeline(transaction=False) as pipe:
            for key, fields in commands[i]:
                pipe.hmget(key, fields)
            return await pipe.execute()

    def feast_sdk(i: int) -> Any:
        rows = [{k: r[k] for k in ENTITY_FIELDS} for r in pool[i]]
        return store.get_online_features(features=service, entity_rows=rows).to_dict()

    async def feast_sdk_async(i: int) -> Any:
        rows = [{k: r[k] for k in ENTITY_FIELDS} for r in pool[i]]
        response = await store.get_online_features_async(features=service, entity_rows=rows)
        return response.to_dict()

    return {
        "redis_floor": floor,
        "redis_floor_async": floor_async,
        "feast_sdk": feast_sdk,
        "feast_sdk_async": feast_sdk_async,
    }


def _percentiles(values: list[float]) -> dict[str, float]:
    ms = np.asarray(values) * 1000
    return {
        "p50_ms": round(float(np.percentile(ms, 50)), 4),
        "p90_ms": round(float(np.percentile(ms, 90)), 4),
        "p99_ms": round(float(np.percentile(ms, 99)), 4),
    }


def _berth_reader(
    store: Any, defaults: dict[str, float], notes: list[str], source: str
) -> Callable[[list[list[dict[str, Any]]]], Callable[[int], Awaitable[Any]]] | None:
    """Berth's own reader (``berth_transformer.features``), as the transformer builds it."""
    try:
        from berth.featurerepo import service_contract
        from berth_transformer.features import open_reader
        from berth_transformer.schema import Candidates
    except ImportError as exc:  # the transformer package is not installed
        notes.append(f"berth reader unavailable: {exc}")
        return None
    contract = service_contract(store, SERVICE)
    reader = open_reader(store, SERVICE, contract, defaults, {}, {}, 1.0, source)  # type: ignore[arg-type]

    def make(pool: list[list[dict[str, Any]]]) -> Callable[[int], Awaitable[Any]]:
        batches = [
            Candidates(
                customer_id=np.array([r["customer_id"] for r in rows], np.int64),
                driver_id=np.array([r["driver_id"] for r in rows], np.int64),
                trip_distance_km=np.array([r["trip_distance_km"] for r in rows], np.float32),
                pickup_hour=np.array([r["pickup_hour"] for r in rows], np.int64),
            )
            for rows in pool
        ]

        async def read(i: int) -> Any:
            return await reader.read(batches[i])

        return read

    return make


async def _interleaved(
    readers: dict[str, Callable[[int], Any]], pool: int, reads: int, rounds: int
) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {name: [] for name in readers}
    per_round = max(1, reads // rounds)

    async def call(fn: Callable[[int], Any], i: int) -> None:
        result = fn(i)
        if asyncio.iscoroutine(result):
            await result

    for fn in readers.values():  # warm-up: connections, Feast's registry cache
        for i in range(10):
            await call(fn, i % pool)
    for r in range(rounds):
        for name, fn in readers.items():
            for k in range(per_round):
                i = (r * per_round + k) % pool
                started = time.perf_counter()
                await call(fn, i)
                out[name].append(time.perf_counter() - started)
    return out


async def _same_matrix(
    berth: Callable[[int], Awaitable[Any]], other: Callable[[int], Awaitable[Any]], pool: int
) -> bool:
    for i in range(min(pool, 16)):
        expected, _ = await berth(i)
        got, _ = await other(i)
        if expected.shape != got.shape or not np.allclose(expected, got, rtol=1e-6, atol=1e-6):
            return False
    return True


# Every reader, in report order; ``redis_floor`` (the denominator of the ratios) last.
READERS = (
    "berth",
    "berth_feast_source",
    "feast_sdk",
    "feast_sdk_async",
    "redis_floor_async",
    "redis_floor",
)


def ratios(result: dict[str, Any]) -> dict[str, float]:
    floor = result["redis_floor"]["p50_ms"]
    out = {}
    for name in READERS[:-1]:
        if name in result:
            out[f"{name}_over_floor"] = round(result[name]["p50_ms"] / floor, 2)
    return out
