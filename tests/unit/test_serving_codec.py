"""REST body decoding (JSON and the binary tensor extension) without a server."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from berth.errors import InvalidInputError
from berth.serving.codec import RestBody, decode_v2
from berth.wire import HEADER_LENGTH

ROWS = np.arange(40, dtype=np.float32).reshape(2, 20) / 7


def _binary(header: dict[str, Any], tail: bytes) -> tuple[bytes, str]:
    head = json.dumps(header).encode()
    return head + tail, str(len(head))


def _tensor(**overrides: Any) -> dict[str, Any]:
    return {"name": "features", "datatype": "FP32", "shape": [2, 20], **overrides}


def test_json_request_keeps_id_parameters_and_outputs() -> None:
    doc = {
        "id": "r-1",
        "parameters": {"binary_data_output": True},
        "inputs": [_tensor(data=ROWS.ravel().tolist())],
        "outputs": [{"name": "score", "parameters": {"binary_data": True}}],
    }
    request = decode_v2(json.dumps(doc).encode(), None, "m")
    assert request.id == "r-1" and request.model_name == "m"
    assert request.parameters == {"binary_data_output": True}
    assert request.request_outputs is not None
    assert request.request_outputs[0].name == "score"
    assert request.request_outputs[0].binary_data is True
    np.testing.assert_array_equal(request.inputs[0].as_numpy(), ROWS)


def test_binary_extension_reads_little_endian_tensor_after_the_json_header() -> None:
    body, length = _binary(
        {"inputs": [_tensor(parameters={"binary_data_size": ROWS.nbytes})]},
        ROWS.astype("<f4").tobytes(),
    )
    request = decode_v2(body, length, "m")
    assert request.id is None  # the model generates one
    np.testing.assert_array_equal(request.inputs[0].as_numpy(), ROWS)
    assert "binary_data_size" not in (request.inputs[0].parameters or {})


def test_rest_body_labels_its_protocol() -> None:
    assert RestBody("v1", b"{}").label == "v1"
    assert RestBody("v2", b"{}").label == "v2"
    assert RestBody("v2", b"{}", "2").label == "v2-binary"
    assert RestBody("v1", b'{"instances": []}').decode("m") == {"instances": []}


BAD: list[tuple[bytes, str | None, str]] = [
    (b'{"inputs": [', None, "body"),
    (b'{"instances": [[NaN]]}', None, "NaN"),
    (b"[1, 2]", None, "body"),
    (b"{}", None, "inputs"),
    (b'{"inputs": "x"}', None, "inputs"),
    (b'{"inputs": [1]}', None, "inputs[0]"),
    (
        json.dumps({"inputs": [{"datatype": "FP32", "shape": [1], "data": [1]}]}).encode(),
        None,
        "inputs[0].name",
    ),
    (json.dumps({"inputs": [_tensor()]}).encode(), None, "'features': needs 'data'"),
    (json.dumps({"inputs": [_tensor(shape=["a", 20], data=[])]}).encode(), None, "shape"),
    (json.dumps({"inputs": [_tensor(shape=None, data=[])]}).encode(), None, "shape is missing"),
    (json.dumps({"inputs": [_tensor(name=None, data=[])]}).encode(), None, "name is missing"),
    (json.dumps({"inputs": [_tensor(datatype=None, data=[])]}).encode(), None, "datatype"),
    (json.dumps({"inputs": [_tensor(data=None)]}).encode(), None, "'data' must be a list"),
    (json.dumps({"inputs": [_tensor(data="x")]}).encode(), None, "'data' must be a list"),
    (json.dumps({"id": 5, "inputs": []}).encode(), None, "id must be a string"),
    (json.dumps({"inputs": [], "parameters": []}).encode(), None, "parameters"),
    (json.dumps({"inputs": [], "outputs": [{"x": 1}]}).encode(), None, "outputs[0].name"),
    (
        *_binary({"inputs": [_tensor(parameters={"binary_data_size": 160})]}, b"\0" * 80),
        "exceeds the 80 bytes",
    ),
    (
        *_binary({"inputs": [_tensor(parameters={"binary_data_size": 79})]}, b"\0" * 79),
        "not a whole number of FP32",
    ),
    (
        *_binary({"inputs": [_tensor(parameters={"binary_data_size": "80"})]}, b"\0" * 80),
        "must be an integer",
    ),
    (
        *_binary(
            {"inputs": [_tensor(datatype="BYTES", parameters={"binary_data_size": 8})]}, b"\0" * 8
        ),
        "cannot be sent as binary",
    ),
    (
        *_binary({"inputs": [_tensor(parameters={"binary_data_size": 80})]}, b"\0" * 88),
        "88 bytes follow",
    ),
    (b'{"inputs": []}', "abc", HEADER_LENGTH),
    (b'{"inputs": []}', "999", HEADER_LENGTH),
    (b'{"inputs": []}', "0", HEADER_LENGTH),
]


@pytest.mark.parametrize(("body", "length", "named"), BAD)
def test_malformed_bodies_are_invalid_input_naming_the_field(
    body: bytes, length: str | None, named: str
) -> None:
    with pytest.raises(InvalidInputError) as err:
        RestBody("v2", body, length).decode("m")
    assert named in err.value.message
    assert err.value.status == 400
