"""Feast's Redis layout on the wire: the ``HMGET`` commands (RESP) and the decode of their replies.

A feature field holds a serialized ``feast.types.Value``, a ``_ts:<view>`` field a serialized
``google.protobuf.Timestamp``. The numeric ``Value`` kinds are read straight from their bytes
(tag, then fixed32/fixed64/varint); any other kind goes through Feast's proto class. Decoding is
pure: the same reply bytes always give the same row, so :class:`DecodeCache` keeps the decoded
rows of recent replies (keyed by the bytes, bounded in memory) and a repeated entity whose
stored values did not change costs one dict lookup instead of a decode per field.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from google.protobuf.message import DecodeError
from redis.crc import key_slot

_F32 = struct.Struct("<f").unpack_from
_F64 = struct.Struct("<d").unpack_from
# feast.types.Value oneof tags: int32_val=3, int64_val=4 (varint), double_val=5 (fixed64),
# float_val=6 (fixed32), bool_val=7 (varint). Anything else goes through the proto class.
_INT32, _INT64, _DOUBLE, _FLOAT, _BOOL = 0x18, 0x20, 0x29, 0x35, 0x38
DECODE_CACHE_BYTES = 8 << 20  # default bound of a source's decode cache (estimated bytes)
# Estimated bytes an entry holds beyond its reply's payload: the dict slot (resizes included),
# the key and entry tuples and the row's header; per field the bytes object's header, its slot
# in the key tuple and its 8-byte decoded float.
_ENTRY_OVERHEAD = 320
_FIELD_OVERHEAD = 56

Reply = list[bytes | None]


class Command(NamedTuple):
    """One ``HMGET``: its RESP bytes, the key's hash slot (Redis Cluster), key and fields."""

    packed: bytes
    slot: int
    args: tuple[bytes, ...]


def hmget(key: bytes, fields: Sequence[bytes]) -> Command:
    """``HMGET key fields...`` as RESP bytes, with the key's cluster hash slot."""
    args = (b"HMGET", key, *fields)
    packed = b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)
    return Command(packed, key_slot(key), args[1:])


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
    """A serialized ``feast.types.Value`` holding one number -> float; NaN when absent/null,
    ``inf`` when the bytes are no number (a store fault: see ``store_faults.screen``)."""
    if not buf:
        return math.nan
    try:
        return _decode_number(buf)
    except (DecodeError, struct.error, IndexError, ValueError, TypeError):
        return math.inf


def _decode_number(buf: bytes) -> float:
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


def decode_row(reply: Sequence[bytes | None], k: int) -> list[float]:
    """One ``HMGET`` reply: its first ``k`` fields as values, the rest as event seconds."""
    return [decode_value(b) for b in reply[:k]] + [decode_seconds(b) for b in reply[k:]]


class DecodeCache:
    """Decoded rows of recent replies, keyed by ``k`` and the reply's bytes.

    Bounded by an estimate of the bytes its entries hold (payload plus per-entry and per-field
    overheads, see ``tests/unit/test_redis_decode.py`` for the check against measured memory);
    the oldest entries go first. A row is stored as its float64 bytes, so a read's matrix is
    one ``b"".join`` and one ``np.frombuffer``.
    """

    def __init__(self, max_bytes: int = DECODE_CACHE_BYTES) -> None:
        self.max_bytes = max_bytes
        self.size_bytes = 0
        self._rows: dict[tuple[object, ...], tuple[bytes, int]] = {}

    def __len__(self) -> int:
        return len(self._rows)

    def decode(self, replies: Sequence[Reply], k: int) -> np.ndarray:
        """``[len(replies), width]`` float64: values in the first ``k`` columns, seconds after."""
        rows = self._rows
        parts = []
        for reply in replies:
            key = (k, *reply)
            hit = rows.get(key)
            if hit is None:
                hit = self._add(key, reply, k)
            parts.append(hit[0])
        width = len(replies[0]) if replies else 0
        return np.frombuffer(b"".join(parts), dtype=np.float64).reshape(len(replies), width)

    def _add(self, key: tuple[object, ...], reply: Reply, k: int) -> tuple[bytes, int]:
        row = np.array(decode_row(reply, k), dtype=np.float64).tobytes()
        cost = _cost(reply)
        entry = (row, cost)
        if cost > self.max_bytes:
            return entry
        rows = self._rows
        while self.size_bytes + cost > self.max_bytes:
            self.size_bytes -= rows.pop(next(iter(rows)))[1]
        rows[key] = entry
        self.size_bytes += cost
        return entry


def _cost(reply: Reply) -> int:
    """Estimated bytes one cached reply holds: its key tuple, the bytes objects, the row."""
    payload = sum(len(b) for b in reply if b)
    return _ENTRY_OVERHEAD + payload + len(reply) * _FIELD_OVERHEAD
