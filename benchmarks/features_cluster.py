"""The feature read on a Redis Cluster: Berth's direct source vs Feast's SDK vs redis-py.

A 3-master Redis Cluster on loopback (``berth.stack.redis_cluster``, no replicas: replication
would only add noise to a read benchmark), materialized by Feast itself with
``redis_type: redis_cluster``, the same requests as the plain-Redis rows, interleaved rounds:

* ``berth_cluster`` -- ``FeatureReader.read`` on the cluster: HMGETs grouped by master, one
  pipelined write per master, masters read concurrently (``berth_transformer.redis_transport``).
* ``feast_sdk_cluster`` -- ``get_online_features(...).to_dict()`` on the cluster (Feast's
  ``RedisCluster`` client).
* ``redis_cluster_floor`` -- redis-py's ``RedisCluster.pipeline()`` of the very HMGETs Feast
  sends (it too groups by node and writes to every node before reading), replies left as
  bytes: the floor. ``redis_cluster_floor_async`` is the same through ``redis.asyncio``.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from typing import Any
from unittest import mock

import numpy as np

from benchmarks import payloads
from benchmarks.features_bench import (
    ENTITY_FIELDS,
    SERVICE,
    _berth_reader,
    _interleaved,
    _same_matrix,
    feast_commands,
)
from benchmarks.workspace import Workspace

# In report order; the floor (the denominator of the ratio) last.
CLUSTER_READERS = (
    "berth_cluster",
    "feast_sdk_cluster",
    "redis_cluster_floor_async",
    "redis_cluster_floor",
)


def materialize(ws: Workspace, connection_string: str) -> Any:
    """Apply the workspace's repo and materialize it into the cluster; its FeatureStore."""
    from berth.featurerepo import CLUSTER_YAML, materialize_latest

    with (
        mock.patch.dict(os.environ, {"REDIS_CONNECTION_STRING": connection_string}),
        (ws.root / "materialize-cluster.log").open("w") as log,
        warnings.catch_warnings(),
        contextlib.redirect_stdout(log),
        contextlib.redirect_stderr(log),
    ):
        warnings.simplefilter("ignore")
        return materialize_latest(ws.repo, ws.repo / CLUSTER_YAML)


async def compare_reads(
    ws: Workspace, connection_string: str, ports: list[int], candidates: int, reads: int
) -> dict[str, Any]:
    import redis
    import redis.asyncio
    from redis.asyncio.cluster import ClusterNode

    from berth.artifact import read_metadata

    store = materialize(ws, connection_string)
    service = store.get_feature_service(SERVICE)
    defaults = {f.name: f.default for f in read_metadata(ws.artifact).features}
    ranges = ws.entity_ranges()
    pool = payloads.ranking_requests(64, candidates, 0, ranges["drivers"], ranges["customers"])
    commands = [feast_commands(store, service, rows) for rows in pool]
    sync_client = redis.RedisCluster(host="127.0.0.1", port=ports[0])
    async_client = redis.asyncio.RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", ports[0])])
    notes: list[str] = []

    def floor(i: int) -> Any:
        pipe = sync_client.pipeline()
        for key, fields in commands[i]:
            pipe.hmget(key, fields)
        return pipe.execute()

    async def floor_async(i: int) -> Any:
        pipe = async_client.pipeline()
        for key, fields in commands[i]:
            pipe.hmget(key, fields)
        return await pipe.execute()

    def feast_sdk(i: int) -> Any:
        rows = [{k: r[k] for k in ENTITY_FIELDS} for r in pool[i]]
        return store.get_online_features(features=service, entity_rows=rows).to_dict()

    readers: dict[str, Any] = {
        "redis_cluster_floor": floor,
        "redis_cluster_floor_async": floor_async,
        "feast_sdk_cluster": feast_sdk,
    }
    berth = _berth_reader(store, defaults, notes, "auto")
    sdk_reader = _berth_reader(store, defaults, notes, "feast")
    if berth is not None:
        readers["berth_cluster"] = berth(pool)
    latencies = await _interleaved(readers, len(pool), reads, 5)
    result: dict[str, Any] = {"masters": len(ports), "notes": notes}
    for name, values in latencies.items():
        ms = np.asarray(values) * 1000
        result[name] = {f"p{q}_ms": round(float(np.percentile(ms, q)), 4) for q in (50, 90, 99)}
    if berth is not None and sdk_reader is not None:
        result["berth_cluster_matches_feast_sdk"] = await _same_matrix(
            berth(pool), sdk_reader(pool), len(pool)
        )
        result["berth_cluster_over_floor"] = round(
            result["berth_cluster"]["p50_ms"] / result["redis_cluster_floor"]["p50_ms"], 2
        )
    sync_client.close()
    await async_client.aclose()
    return result


def run(ws: Workspace, candidates: int, reads: int) -> dict[str, Any]:
    """The cluster rows, on a private 3-master cluster started and stopped here."""
    import asyncio

    from berth.stack import RedisClusterServers

    cluster = RedisClusterServers(nodes=3, replicas=0).start()
    try:
        return asyncio.run(
            compare_reads(ws, cluster.connection_string, cluster.ports, candidates, reads)
        )
    finally:
        cluster.close()
