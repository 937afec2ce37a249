"""Hostile requests against a running stack: shapes, lengths, protobuf, reflected strings.

One stack for the module (redis-server, ``python -m berth_predictor``, ``python -m
berth_transformer``, all loopback). Every case is a clear 4xx / INVALID_ARGUMENT naming the
field, read before any feature is, and never echoes a client string unbounded.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import grpc
import numpy as np
import pytest
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.grpc.grpc_predict_v2_pb2_grpc import GRPCInferenceServiceStub

from berth.loadtest import grpc_request, instances, v2_inputs
from tests.support.serving import ServingStack

pytestmark = [pytest.mark.integration]

MODEL = "driver-ranking"
MAX_CANDIDATES = 50


@pytest.fixture(scope="module")
def stack(serving_stack: Any) -> Iterator[ServingStack]:
    with serving_stack(
        "hostile-input",
        transformer_env={"BERTH_TRANSFORMER_MAX_CANDIDATES": str(MAX_CANDIDATES)},
    ) as s:
        yield s


def _post(url: str, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def _v2(stack: ServingStack, inputs: list[dict[str, Any]]) -> tuple[int, dict[str, Any]]:
    status, raw = _post(
        f"{stack.url}/v2/models/{MODEL}/infer", json.dumps({"inputs": inputs}).encode()
    )
    return status, json.loads(raw)


def _rows(n: int) -> list[dict[str, Any]]:
    return instances(n)["instances"]  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("name", "shape", "data", "needle"),
    [
        ("driver_id", [-1], None, "dimension must be >= 1"),
        ("customer_id", [0], [], "dimension must be >= 1"),
        ("driver_id", [4], [1001], "1 values for shape [4]"),  # was broadcast silently
        ("trip_distance_km", [4], [4.2] * 3, "3 values for shape [4]"),
        ("driver_id", [1, 4], None, "shape must be 1-D"),
    ],
)
def test_v2_rest_shapes_and_lengths_are_400_naming_the_tensor(
    stack: ServingStack, name: str, shape: list[int], data: list[Any] | None, needle: str
) -> None:
    inputs = v2_inputs(_rows(4))
    for tensor in inputs:
        if tensor["name"] == name:
            tensor["shape"] = shape
            if data is not None:
                tensor["data"] = data
    status, body = _v2(stack, inputs)
    assert status == 400, body
    assert body["error"].startswith(name) and needle in body["error"], body


def test_v2_rest_minus_one_shape_cannot_pass_the_candidate_limit(stack: ServingStack) -> None:
    rows = _rows(4 * MAX_CANDIDATES)
    inputs = v2_inputs(rows)
    for tensor in inputs:
        tensor["shape"] = [-1]
    status, body = _v2(stack, inputs)
    assert status == 400, body
    inputs = v2_inputs(rows)  # the real length is over the limit too
    status, body = _v2(stack, inputs)
    assert status == 400 and f"at most {MAX_CANDIDATES} candidates" in body["error"], body


def _grpc(stack: ServingStack, request: pb.ModelInferRequest) -> grpc.RpcError:
    target = f"127.0.0.1:{stack.transformer_ports[1]}"
    with grpc.insecure_channel(target) as channel, pytest.raises(grpc.RpcError) as rpc:
        GRPCInferenceServiceStub(channel).ModelInfer(request, timeout=10)
    return rpc.value


def test_grpc_minus_one_shape_and_mismatched_lengths_are_invalid_argument(
    stack: ServingStack,
) -> None:
    request = grpc_request(_rows(4 * MAX_CANDIDATES))
    for tensor in request.inputs:
        del tensor.shape[:]
        tensor.shape.append(-1)
    err = _grpc(stack, request)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, err.details()
    request = grpc_request(_rows(4))
    del request.inputs[1].contents.int64_contents[1:]  # driver_id: 1 value for shape [4]
    err = _grpc(stack, request)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, err.details()
    assert "driver_id" in err.details()


def test_grpc_raw_contents_of_the_wrong_length_are_invalid_argument(stack: ServingStack) -> None:
    rows = _rows(4)
    request = pb.ModelInferRequest(model_name=MODEL)
    for tensor in v2_inputs(rows):
        request.inputs.append(
            pb.ModelInferRequest.InferInputTensor(
                name=tensor["name"], datatype=tensor["datatype"], shape=[4]
            )
        )
        dtype = "<f4" if tensor["datatype"] == "FP32" else "<i8"
        request.raw_input_contents.append(np.asarray(tensor["data"], dtype).tobytes())
    request.raw_input_contents[0] = request.raw_input_contents[0][:8]  # 1 of 4 values
    err = _grpc(stack, request)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "customer_id" in err.details()
    request.raw_input_contents.append(b"\0" * 8)  # more raw contents than inputs
    err = _grpc(stack, request)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, err.details()


def test_grpc_malformed_protobuf_is_invalid_argument(stack: ServingStack) -> None:
    target = f"127.0.0.1:{stack.transformer_ports[1]}"
    with grpc.insecure_channel(target) as channel:
        call = channel.unary_unary("/inference.GRPCInferenceService/ModelInfer")
        with pytest.raises(grpc.RpcError) as rpc:
            call(b"\xff\xff\xff\xff not a protobuf", timeout=10)
    assert rpc.value.code() == grpc.StatusCode.INVALID_ARGUMENT, rpc.value.details()


@pytest.mark.parametrize("value", [1e39, -1.0])
def test_a_value_float32_cannot_hold_is_refused_by_the_transformer(
    stack: ServingStack, value: float
) -> None:
    body = instances(2)
    body["instances"][1]["trip_distance_km"] = value
    status, raw = _post(stack.infer_url, json.dumps(body).encode())
    error = json.loads(raw)["error"]
    assert status == 400 and "trip_distance_km" in error, error
    assert "predictor" not in error  # the transformer's own refusal, not the predictor's
    inputs = v2_inputs(_rows(2))
    inputs[2]["data"][1] = value
    status, payload = _v2(stack, inputs)
    assert status == 400 and payload["error"].startswith("trip_distance_km"), payload


def test_a_1mb_unknown_key_is_not_reflected(stack: ServingStack) -> None:
    key = "k" * 1_000_000
    body = json.dumps({**instances(1), key: 1}).encode()
    status, raw = _post(stack.infer_url, body)
    assert status == 400
    assert len(raw) < 1024, len(raw)
    inputs = v2_inputs(_rows(1))
    inputs[0]["name"] = key
    status, raw = _post(
        f"{stack.url}/v2/models/{MODEL}/infer", json.dumps({"inputs": inputs}).encode()
    )
    assert status == 400 and len(raw) < 1024, len(raw)
    status, raw = _post(f"{stack.url}/v2/models/{'m' * 5000}/infer", b"{}")
    assert status == 404 and len(raw) < 1024, len(raw)
    longest = max(len(line) for line in stack.transformer.log().splitlines())  # type: ignore[union-attr]
    assert longest < 4096, longest


@pytest.mark.parametrize(
    "given", ["café", "a b", "x" * 8_000, "x" * 16_000], ids=["non-ascii", "space", "8k", "16k"]
)
def test_a_request_id_that_is_not_a_short_ascii_token_is_replaced(
    stack: ServingStack, given: str
) -> None:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", stack.transformer_ports[0], timeout=10)
    try:
        conn.putrequest("POST", f"/v1/models/{MODEL}:predict")
        conn.putheader("Content-Type", "application/json")
        conn.putheader("x-request-id", given.encode("latin-1"))
        body = json.dumps(instances(3)).encode()
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        response = conn.getresponse()
        status, echoed = response.status, response.getheader("x-request-id") or ""
        response.read()
    finally:
        conn.close()
    assert status == 200
    assert echoed and echoed != given and len(echoed) <= 128 and echoed.isascii()
    lines = [line for line in stack.transformer.log().splitlines() if echoed in line]  # type: ignore[union-attr]
    assert any('"request id replaced"' in line for line in lines), lines
    assert all(len(line) < 2048 for line in lines)


def test_a_good_request_id_is_kept_and_a_long_one_replaced_over_grpc(stack: ServingStack) -> None:
    target = f"127.0.0.1:{stack.transformer_ports[1]}"
    with grpc.insecure_channel(target) as channel:
        stub = GRPCInferenceServiceStub(channel)
        request = grpc_request(_rows(2))
        _, call = stub.ModelInfer.with_call(
            request, timeout=10, metadata=(("x-request-id", "rank-42"),)
        )
        assert call.code() == grpc.StatusCode.OK
        response, call = stub.ModelInfer.with_call(
            request, timeout=10, metadata=(("x-request-id", "y" * 4000),)
        )
        assert call.code() == grpc.StatusCode.OK and len(response.outputs) == 1
    log = stack.transformer.log()  # type: ignore[union-attr]
    assert '"given_length": 4000' in log
