"""The predictor's data plane with a gRPC request, as its gRPC adapter hands it over."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import numpy as np
import pytest
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.infer_type import InferResponse
from prometheus_client import REGISTRY

from berth.errors import ModelNotFoundError
from berth.serving.errors import WireError
from berth_predictor.data_plane import PredictorDataPlane
from tests.unit.test_predictor_model import ROWS, WIDTH, _expected, _ready, write_artifact


@pytest.fixture
def plane(tmp_path: Path) -> PredictorDataPlane:
    write_artifact(tmp_path / "artifact")
    return PredictorDataPlane(_ready(tmp_path / "artifact"))


def _request(datatype: str = "FP32", version: str = "") -> pb.ModelInferRequest:
    tensor = pb.ModelInferRequest.InferInputTensor(
        name="features", datatype=datatype, shape=[len(ROWS), WIDTH]
    )
    tensor.contents.fp32_contents.extend(ROWS.ravel().tolist())
    return pb.ModelInferRequest(model_name="tiny", model_version=version, inputs=[tensor])


def _grpc_count(outcome: str) -> float:
    labels = {"protocol": "grpc-v2", "outcome": outcome}
    return REGISTRY.get_sample_value("berth_predictor_request_seconds_count", labels) or 0.0


def test_a_grpc_request_is_decoded_and_scored(plane: PredictorDataPlane) -> None:
    response, headers = asyncio.run(plane.infer("tiny", "v1-test", _request(), {}))
    assert isinstance(response, InferResponse) and headers["x-model-version"] == "v1-test"
    wire = response.to_grpc()
    scores = np.frombuffer(wire.raw_output_contents[0], np.float32)
    np.testing.assert_allclose(scores, _expected(ROWS), atol=1e-6)


@pytest.mark.parametrize(
    ("request_", "code", "outcome"),
    [
        (_request(version="v9"), grpc.StatusCode.NOT_FOUND, "404"),
        (_request(datatype="FP99"), grpc.StatusCode.INVALID_ARGUMENT, "400"),
    ],
)
def test_a_refused_grpc_request_is_counted_and_named(
    plane: PredictorDataPlane, request_: pb.ModelInferRequest, code: grpc.StatusCode, outcome: str
) -> None:
    before = _grpc_count(outcome)
    with pytest.raises(WireError) as refused:
        asyncio.run(plane.infer("tiny", request_.model_version, request_, {}))
    assert refused.value.status_code == code
    assert _grpc_count(outcome) == before + 1
    if outcome == "400":
        assert "'FP99'" in str(refused.value)


def test_readiness_and_metadata(plane: PredictorDataPlane) -> None:
    assert plane.ready() and plane.model_ready("tiny", "v1-test")
    plane.model.guard.draining = True
    assert not plane.ready()
    assert plane.metadata("tiny")["versions"] == ["v1-test"]
    with pytest.raises(ModelNotFoundError, match="not found"):
        plane.metadata("other")
