"""A master of the Redis Cluster killed while ranking requests flow (open loop): the transformer
answers 503 with Retry-After only until the master's replica takes over (the killed master
holds the first candidate's key, so every request reads from it), then every request
is served again by the same process; nothing accepted is lost (each request is answered or
refused, none hangs).

The cluster runs with ``cluster-node-timeout`` 1 s, so the failover takes seconds. The rate is
200 rps, or half the stack's measured saturation when this shared machine cannot take 200.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from berth.loadtest import ERROR, closed_loop, instances, open_loop
from berth.stack import RedisClusterServers
from tests.support.serving import ServingStack

pytestmark = [pytest.mark.integration, pytest.mark.slow]

RATE = 200.0
BODY = instances(10)
SETTLE_S = 1.0  # after the replica is promoted: the first reads refetch the topology
LOG = print


def driver_slot(driver: int) -> int:
    """The hash slot of a driver's Redis key, as Feast writes it (project ``berth``)."""
    from feast.infra.key_encoding_utils import serialize_entity_key
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value
    from redis.crc import key_slot

    key = EntityKey(join_keys=["driver_id"], entity_values=[Value(int64_val=driver)])
    return int(key_slot(serialize_entity_key(key, 3) + b"berth"))


def probe(url: str) -> tuple[int, str | None]:
    """One request: its status and Retry-After header."""
    request = urllib.request.Request(
        url, json.dumps(BODY).encode(), {"content-type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, resp.headers.get("Retry-After")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Retry-After")


def test_master_killed_under_load_503_until_failover_then_full_recovery(
    built: tuple[Path, Path], tmp_path: Path
) -> None:
    if not RedisClusterServers.available():
        pytest.skip("redis-server/redis-cli not found")
    cluster = RedisClusterServers(node_timeout_ms=1000).start()
    env = {"BERTH_TRANSFORMER_FEATURE_TIMEOUT_MS": "500", "BERTH_TRANSFORMER_MAX_INFLIGHT": "64"}
    try:
        with ServingStack(
            built[0], built[1], tmp_path, transformer_env=env, redis_cluster=cluster
        ) as stack:
            _failover_under_load(stack, cluster)
    finally:
        cluster.close()


def _failover_under_load(stack: ServingStack, cluster: RedisClusterServers) -> None:
    assert '"redis_type": "redis_cluster"' in stack.log_path("transformer").read_text()
    pid = stack.transformer.proc.pid  # type: ignore[union-attr]
    burst = asyncio.run(closed_loop(stack.infer_url, BODY, 8, 2.0))
    rate = min(RATE, 0.5 * burst.rate())
    victim = cluster.master_of(driver_slot(BODY["instances"][0]["driver_id"]))
    marks: dict[str, float] = {}
    probes: list[tuple[float, int, str | None]] = []

    def kill_and_wait() -> None:
        cluster.kill(victim)
        marks["kill"] = time.monotonic()
        marks["failover_s"] = cluster.wait_replaced(victim, 30)
        marks["replaced"] = time.monotonic()

    def probe_during_outage() -> None:
        deadline = time.monotonic() + 10
        while "replaced" not in marks and time.monotonic() < deadline:
            probes.append((time.monotonic(), *probe(stack.infer_url)))
            time.sleep(0.1)

    run = asyncio.run(
        open_loop(
            stack.infer_url,
            BODY,
            rate,
            12.0,
            timeout_s=10.0,
            events={2.0: kill_and_wait, 2.05: probe_during_outage},
        )
    )
    statuses = run.statuses()
    LOG(
        f"failover at {rate:.0f} rps (saturation {burst.rate():.0f}): {statuses}, "
        f"replica took over {marks['failover_s']:.2f} s after the kill"
    )
    LOG("timeline (s after the kill: statuses):", _timeline(run, marks["kill"]))
    # Nothing lost: every request sent got an HTTP answer, none hung to the client timeout.
    assert len(run.samples) >= int(rate * 12.0) - 1
    assert statuses.get(ERROR, 0) == 0, statuses
    assert set(statuses) <= {200, 503, 429}, statuses
    failed = [s for s in run.samples if s.status != 200]
    assert all(s.sent < marks["replaced"] + SETTLE_S for s in failed), [
        (round(s.sent - marks["kill"], 2), s.status) for s in failed if s.sent > marks["replaced"]
    ]
    after = [s for s in run.samples if s.sent > marks["replaced"] + SETTLE_S]
    assert after and all(s.status == 200 for s in after)
    # The refusals were 503s that say when to come back.
    refused = [(status, retry) for _, status, retry in probes if status != 200]
    assert statuses.get(503, 0) > 0 and refused, (statuses, probes)
    assert all(status == 503 and retry for status, retry in refused), refused
    # Recovered without a restart: the same transformer process serves.
    assert probe(stack.infer_url)[0] == 200
    assert stack.transformer.proc.pid == pid and stack.transformer.proc.poll() is None  # type: ignore[union-attr]


def _timeline(run: Any, origin: float, step: float = 0.5) -> dict[float, dict[int, int]]:
    buckets: dict[float, dict[int, int]] = {}
    for s in run.samples:
        at = step * ((s.sent - origin) // step)
        bucket = buckets.setdefault(at, {})
        bucket[s.status] = bucket.get(s.status, 0) + 1
    return dict(sorted(buckets.items()))
