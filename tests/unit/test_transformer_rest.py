"""Decoding a V2 REST body for the transformer's own route: what is refused, and how."""

from __future__ import annotations

import json

import numpy as np
import pytest

from berth.errors import InvalidInputError
from berth_transformer.rest import decode

INPUT = {"name": "driver_id", "datatype": "INT64", "shape": [2]}


def test_json_and_binary_bodies_give_the_same_tensor() -> None:
    plain = decode(
        json.dumps({"id": "a", "inputs": [{**INPUT, "data": [7, 9]}]}).encode(), None, "m"
    )
    header = json.dumps({"inputs": [{**INPUT, "parameters": {"binary_data_size": 16}}]}).encode()
    binary = decode(header + np.array([7, 9], "<i8").tobytes(), str(len(header)), "m")
    assert plain.id == "a"
    for request in (plain, binary):
        np.testing.assert_array_equal(request.inputs[0].as_numpy(), [7, 9])


@pytest.mark.parametrize(
    ("raw", "length", "field", "words"),
    [
        (
            b'{"inputs": [{"name": "x"}]}',
            None,
            "inputs.0.shape",
            "malformed request inputs.0.shape",
        ),
        (b"{not json", None, "body", "malformed request body"),
        (b'{"inputs": []}', "abc", "inference-header-content-length", "not a JSON length"),
        (b'{"inputs": []}', "999", "inference-header-content-length", "within the 14-byte body"),
        (b'{"outputs": []}', "15", "body", "missing 'inputs'"),
        (b"{not json", "9", "body", "malformed request body"),
    ],
)
def test_bad_bodies_are_400s_naming_where(
    raw: bytes, length: str | None, field: str, words: str
) -> None:
    with pytest.raises(InvalidInputError) as refused:
        decode(raw, length, "m")
    assert refused.value.status == 400 and refused.value.details.get("field") == field
    assert words in refused.value.message
