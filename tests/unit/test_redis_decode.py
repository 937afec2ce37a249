"""Feast's Redis layout on the wire: our HMGET bytes and reply decode, checked against Feast's
own serialization (``python_values_to_proto_values``, ``Timestamp`` as its Redis store writes
it) and redis-py's own command packing."""

from __future__ import annotations

import math
import tracemalloc
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from feast.protos.feast.types.Value_pb2 import Null, Value
from feast.type_map import feast_value_type_to_python_type, python_values_to_proto_values
from feast.value_type import ValueType
from google.protobuf.timestamp_pb2 import Timestamp

from berth_transformer.features.redis_codec import (
    DecodeCache,
    decode_row,
    decode_seconds,
    decode_value,
    hmget,
)


def _reference(buf: bytes | None) -> float:
    if not buf:
        return math.nan
    message = Value.FromString(buf)
    kind = message.WhichOneof("val")
    return math.nan if kind in (None, "null_val") else float(getattr(message, kind))


def test_decode_value_matches_the_proto_class_for_every_numeric_type_and_the_odd_ones() -> None:
    rng = np.random.default_rng(3)
    values: list[Value | None] = []
    for _ in range(400):
        kind = rng.integers(0, 9)
        if kind == 0:
            values.append(Value(float_val=float(rng.normal(0, 1e3))))
        elif kind == 1:
            values.append(Value(double_val=float(rng.normal(0, 1e9))))
        elif kind == 2:  # every varint length, both signs, the extremes
            exponent = int(rng.integers(0, 64))
            values.append(Value(int64_val=int(rng.choice([-1, 1]) * (2**exponent - 1))))
        elif kind == 3:
            values.append(Value(int32_val=int(rng.integers(-(2**31), 2**31))))
        elif kind == 4:
            values.append(Value(bool_val=bool(rng.integers(0, 2))))
        elif kind == 5:
            values.append(None)  # the entity or the field is missing
        elif kind == 6:
            values.append(Value(null_val=Null.NULL))
        elif kind == 7:
            values.append(Value(float_val=0.0))  # a zero is still present
        else:
            values.append(Value())  # nothing set
    values += [Value(int64_val=2**63 - 1), Value(int64_val=-(2**63)), Value(int32_val=-1)]
    items = [None if v is None else v.SerializeToString() for v in values]
    got = np.array([decode_value(b) for b in items])
    want = np.array([_reference(b) for b in items])
    np.testing.assert_array_equal(got, want)  # NaN where NaN, bit-exact elsewhere


def test_decode_seconds_reads_timestamps_and_zero_when_absent() -> None:
    stamps = [0, 1, 127, 128, 1_732_400_000, 2**40]
    items: list[bytes | None] = [Timestamp(seconds=s, nanos=7).SerializeToString() for s in stamps]
    items += [None, b""]
    np.testing.assert_array_equal([decode_seconds(b) for b in items], [*stamps, 0, 0])


def test_bytes_that_are_no_number_decode_as_inf_for_the_store_fault_screen() -> None:
    import math

    from feast.protos.feast.types.Value_pb2 import Value

    from berth_transformer.features.redis_codec import decode_value

    assert decode_value(b"\xff\xfe\x00garbage") == math.inf
    assert decode_value(b"\x35\x00") == math.inf  # a float tag with 1 byte of 4
    assert decode_value(Value(string_val="abc").SerializeToString()) == math.inf
    assert math.isnan(decode_value(None))


# Every value type a served feature can have (berth.featurerepo: Float32, Float64, Int32, Int64),
# bool (which the decoder reads too), the extremes, and None (Feast writes an empty Value).
ROUND_TRIP = {
    ValueType.FLOAT: [0.0, -1.5, 3.4028234663852886e38, 1e-45, float("inf"), float("nan"), None],
    ValueType.DOUBLE: [0.0, -2.5, 1.7976931348623157e308, 5e-324, 1 / 3, None],
    ValueType.INT32: [0, 1, -1, 2**31 - 1, -(2**31), 300, None],
    ValueType.INT64: [0, 1, -1, 2**63 - 1, -(2**63), 2**35 + 7, None],
    ValueType.BOOL: [True, False, None],
}


@pytest.mark.parametrize("kind", list(ROUND_TRIP), ids=lambda k: k.name)
def test_values_feast_serializes_decode_to_what_feast_reads_back(kind: ValueType) -> None:
    protos = python_values_to_proto_values(ROUND_TRIP[kind], kind)
    for proto in protos:
        stored = proto.SerializeToString()  # what Feast's Redis store writes in the field
        expected = feast_value_type_to_python_type(proto)  # what Feast's SDK returns
        want = math.nan if expected is None else float(expected)
        np.testing.assert_array_equal(decode_value(stored), want, err_msg=f"{stored!r}")


def test_event_times_as_feasts_redis_store_writes_them() -> None:
    start = datetime(2026, 11, 30, 12, 0, 0, 250_000, tzinfo=UTC)
    for offset in (timedelta(0), timedelta(days=-20_000), timedelta(seconds=1), timedelta(days=9)):
        ts = Timestamp()
        ts.FromDatetime(start + offset)  # feast/infra/online_stores/redis.py online_write_batch
        assert decode_seconds(ts.SerializeToString()) == ts.seconds


def test_a_reply_row_is_values_then_event_seconds() -> None:
    fields = python_values_to_proto_values([0.5, None], ValueType.FLOAT)
    ts = Timestamp(seconds=1_732_400_000)
    reply = [fields[0].SerializeToString(), None, ts.SerializeToString(), None]
    row = decode_row(reply, 2)
    np.testing.assert_array_equal(row, [0.5, math.nan, 1_732_400_000.0, 0.0])


def test_hmget_bytes_are_what_redis_py_sends_and_its_slot_is_redis_pys() -> None:
    from redis.connection import Connection
    from redis.crc import key_slot

    key, fields = b"\x02\x00\x00\x00driver_id\x00berth", [b"\x01\x02\x03\x04", b"_ts:view"]
    command = hmget(key, fields)
    assert command.packed == b"".join(Connection().pack_command("HMGET", key, *fields))
    assert command.slot == key_slot(key)
    assert command.args == (key, *fields)


def _replies(count: int, seed: int, fields: int = 6) -> list[list[bytes | None]]:
    """Distinct HMGET replies as Feast stores them: float values, a null, an event time."""
    rng = np.random.default_rng(seed)
    out: list[list[bytes | None]] = []
    for _ in range(count):
        values = python_values_to_proto_values(
            [float(v) for v in rng.normal(0, 100, fields - 2)], ValueType.FLOAT
        )
        reply: list[bytes | None] = [v.SerializeToString() for v in values]
        stamp = Timestamp(seconds=int(rng.integers(1, 2**31)))
        out.append([*reply, None, stamp.SerializeToString()])
    return out


def test_decode_cache_returns_what_the_decode_gives_hit_or_miss() -> None:
    cache = DecodeCache()
    replies = _replies(50, seed=1)
    block = [replies[i % 20] for i in range(40)]  # every reply twice: misses, then hits
    for k in (4, 5):  # the same bytes under another split decode differently, never mixed up
        want = np.array([decode_row(reply, k) for reply in block])
        for _ in range(2):
            np.testing.assert_array_equal(cache.decode(block, k), want)
    assert len(cache) == 40  # 20 replies x 2 splits


def test_decode_cache_stays_within_its_bound_and_drops_the_oldest_first() -> None:
    replies = _replies(400, seed=2)
    cache = DecodeCache(max_bytes=20_000)
    for start in range(0, 400, 10):
        cache.decode(replies[start : start + 10], 5)
        assert cache.size_bytes <= cache.max_bytes
    kept = len(cache)
    assert 0 < kept < 400
    cached = [(5, *reply) in cache._rows for reply in replies]
    assert cached == [False] * (400 - kept) + [True] * kept  # the newest stayed
    size = cache.size_bytes
    cache.decode(replies[-kept:], 5)  # all hits: nothing added, nothing dropped
    assert (len(cache), cache.size_bytes) == (kept, size)
    tiny = DecodeCache(max_bytes=10)  # no reply fits: decoded all the same, never kept
    np.testing.assert_array_equal(
        tiny.decode(replies[:3], 5), [decode_row(r, 5) for r in replies[:3]]
    )
    assert (len(tiny), tiny.size_bytes) == (0, 0)


def test_decode_cache_bound_covers_the_memory_it_really_holds() -> None:
    budget = 1 << 20
    cache = DecodeCache(max_bytes=budget)
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        for start in range(0, 20_000, 50):
            cache.decode(_replies(50, seed=start), 5)  # fresh bytes objects: the cache keeps them
        held = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    assert cache.size_bytes <= budget
    assert len(cache) < 20_000  # it did evict
    assert held <= budget, f"the cache holds {held} bytes, over its {budget}-byte bound"
