"""Decoding Feast's serialized values and timestamps, checked against Feast's own proto classes."""

from __future__ import annotations

import math

import numpy as np
from feast.protos.feast.types.Value_pb2 import Null, Value
from google.protobuf.timestamp_pb2 import Timestamp

from berth_transformer.redis_source import decode_seconds, decode_value


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

    from berth_transformer.redis_source import decode_value

    assert decode_value(b"\xff\xfe\x00garbage") == math.inf
    assert decode_value(b"\x35\x00") == math.inf  # a float tag with 1 byte of 4
    assert decode_value(Value(string_val="abc").SerializeToString()) == math.inf
    assert math.isnan(decode_value(None))
