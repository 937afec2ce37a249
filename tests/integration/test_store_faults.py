"""Store faults against a running stack: bad stored values, unknown entities, a flushed and an
evicting Redis, an outage. Never a 4xx for the store's fault, never a silent ranking of
defaults: every answer says how many values were filled and which entities were unknown.

One stack for the module (real redis-server, Feast repo materialized, predictor and
transformer processes). Tests that flush or stop Redis re-materialize after themselves.
"""

from __future__ import annotations

import asyncio
import json
import struct
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
import redis
from feast.infra.online_stores.helpers import _mmh3
from feast.protos.feast.types.Value_pb2 import Value
from kserve.protocol.grpc.grpc_predict_v2_pb2_grpc import GRPCInferenceServiceStub

from berth.loadtest import closed_loop, grpc_request, instances, v2_inputs
from tests.support.serving import ServingStack

pytestmark = [pytest.mark.integration]

MODEL = "driver-ranking"
LOG = print


@pytest.fixture(scope="module")
def stack(serving_stack: Any) -> Iterator[ServingStack]:
    with serving_stack("store-faults") as s:
        yield s


def _redis(stack: ServingStack) -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=stack.redis.port)


def _post(url: str, body: object) -> tuple[int, dict[str, str], dict[str, Any]]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            headers = {k.lower(): v for k, v in resp.headers.items()}
            return resp.status, headers, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        headers = {k.lower(): v for k, v in err.headers.items()}
        return err.code, headers, json.loads(err.read())


def _rank(stack: ServingStack, drivers: list[int], customer: int = 7) -> Any:
    body = {
        "instances": [
            {"customer_id": customer, "driver_id": d, "trip_distance_km": 4.2, "pickup_hour": 18}
            for d in drivers
        ]
    }
    return _post(stack.infer_url, body)


def _driver_key(stack: ServingStack, driver: int) -> bytes:
    """Feast's Redis key of one driver: its serialized entity key holds the join key name and
    the int64 value (little-endian)."""
    client = _redis(stack)
    value = struct.pack("<q", driver)
    keys = [k for k in client.scan_iter(count=1000) if b"driver_id" in k and value in k]
    assert len(keys) == 1, keys
    return keys[0]


def _field(view: str, feature: str) -> bytes:
    return _mmh3(f"{view}:{feature}")  # type: ignore[no-any-return]


def test_a_healthy_answer_says_nothing_was_filled(stack: ServingStack) -> None:
    status, headers, body = _rank(stack, [1001, 1002, 1003])
    assert status == 200, body
    assert headers["x-berth-filled-values"] == "0"
    assert headers["x-berth-unknown-entities"] == ""


def test_an_unknown_driver_is_named_and_its_fills_counted_on_every_protocol(
    stack: ServingStack,
) -> None:
    status, headers, body = _rank(stack, [1001, 999_999])
    assert status == 200, body
    assert headers["x-berth-unknown-entities"] == "driver_id=999999"
    assert int(headers["x-berth-filled-values"]) > 0
    rows = instances(2)["instances"]
    rows[1]["driver_id"] = 999_999
    status, headers, body = _post(
        f"{stack.url}/v2/models/{MODEL}/infer", {"inputs": v2_inputs(rows)}
    )
    assert status == 200, body
    assert body["parameters"]["unknown_entities"] == "driver_id=999999"
    assert body["parameters"]["filled_values"] > 0
    target = f"127.0.0.1:{stack.transformer_ports[1]}"
    with grpc.insecure_channel(target) as channel:
        response = GRPCInferenceServiceStub(channel).ModelInfer(grpc_request(rows), timeout=10)
    assert response.parameters["unknown_entities"].string_param == "driver_id=999999"
    assert response.parameters["filled_values"].int64_param > 0


@pytest.mark.parametrize(
    ("stored", "name"),
    [
        (b"\xff\xfe\x00garbage", "undecodable"),
        (Value(double_val=float("inf")).SerializeToString(), "inf"),
        (Value(double_val=1e300).SerializeToString(), "1e300"),
    ],
)
def test_a_bad_stored_value_is_the_stores_fault_filled_counted_and_logged(
    stack: ServingStack, stored: bytes, name: str
) -> None:
    client = _redis(stack)
    key, field = _driver_key(stack, 1003), _field("driver_hourly_stats", "conv_rate")
    saved = client.hget(key, field)
    client.hset(key, field, stored)
    try:
        status, headers, body = _rank(stack, [1001, 1003, 1004])
    finally:
        client.hset(key, field, saved)  # type: ignore[arg-type]
    assert status == 200, body  # the view's policy is `default`: filled, not a client error
    assert headers["x-berth-filled-values"] == "1"
    assert headers["x-berth-unknown-entities"] == ""
    lines = [
        json.loads(line)
        for line in stack.transformer.log().splitlines()  # type: ignore[union-attr]
        if '"unreadable stored value"' in line
    ]
    assert any(e["entity"] == "driver_id=1003" and e["field"] == "conv_rate" for e in lines), lines
    status, headers, _ = _rank(stack, [1001, 1003, 1004])
    assert status == 200 and headers["x-berth-filled-values"] == "0"


def test_a_flushed_store_is_503_not_a_ranking_of_defaults(stack: ServingStack) -> None:
    _redis(stack).flushall()
    try:
        status, headers, body = _rank(stack, [1001, 1002, 1003])
        assert status == 503, body
        assert headers.get("retry-after") == "1"
        status, _, body = _post(
            f"{stack.url}/v2/models/{MODEL}/infer", {"inputs": v2_inputs(instances(3)["instances"])}
        )
        assert status == 503, body
        target = f"127.0.0.1:{stack.transformer_ports[1]}"
        with grpc.insecure_channel(target) as channel, pytest.raises(grpc.RpcError) as rpc:
            GRPCInferenceServiceStub(channel).ModelInfer(
                grpc_request(instances(3)["instances"]), timeout=10
            )
        assert rpc.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        stack.materialize()
    status, headers, _ = _rank(stack, [1001, 1002, 1003])
    assert status == 200 and headers["x-berth-filled-values"] == "0"


def _drivers_stored(client: redis.Redis, drivers: list[int]) -> set[int]:
    keys = [k for k in client.scan_iter(count=1000) if b"driver_id" in k]
    return {d for d in drivers if any(struct.pack("<q", d) in k for k in keys)}


def test_an_evicting_store_never_answers_a_silent_ranking(stack: ServingStack) -> None:
    """maxmemory + allkeys-lru, then junk until some features are evicted: each driver's
    answer names it unknown exactly when its key is gone."""
    client = _redis(stack)
    drivers = list(range(1001, 1041))  # berth.datagen: 40 drivers from 1001
    assert _drivers_stored(client, drivers) == set(drivers)
    client.config_set("maxmemory-policy", "allkeys-lru")
    client.config_set("maxmemory", str(int(client.info("memory")["used_memory"]) + 64 * 1024))
    try:
        for i in range(4000):
            client.set(f"junk:{i}", b"j" * 1024)
            if i % 4 == 3 and len(_drivers_stored(client, drivers)) < len(drivers):
                break
        client.config_set("maxmemory", "0")  # eviction stops here: what is gone stays gone
        gone = set(drivers) - _drivers_stored(client, drivers)
        LOG(f"evicting redis: {len(gone)} of {len(drivers)} drivers evicted")
        assert 0 < len(gone) < len(drivers)
        for driver in drivers:
            status, headers, body = _rank(stack, [driver])
            unknown = headers.get("x-berth-unknown-entities", "")
            if driver in gone:
                assert status == 503 or f"driver_id={driver}" in unknown, (driver, status, headers)
            else:
                assert status == 200, body
                assert f"driver_id={driver}" not in unknown, unknown
    finally:
        client.config_set("maxmemory", "0")
        client.flushall()
        stack.materialize()


def test_failure_lines_are_rate_limited_during_an_outage(stack: ServingStack) -> None:
    stack.save_redis()
    before = len(stack.transformer.log().splitlines())  # type: ignore[union-attr]
    stack.redis.stop()
    try:
        run = asyncio.run(closed_loop(stack.infer_url, instances(3), 8, 3.0, timeout_s=5))
    finally:
        stack.redis.start()
    failed = len(run.samples) - run.count(200)
    lines = stack.transformer.log().splitlines()[before:]  # type: ignore[union-attr]
    warnings = [
        line for line in lines if '"level": "warning"' in line or '"level": "error"' in line
    ]
    LOG(f"redis outage: {failed} failed requests, {len(warnings)} warning/error lines")
    assert failed > 50
    assert len(warnings) <= 12, warnings[:20]
