"""OnnxPredictor without a server: a tiny real ONNX artifact written in the test's tmp dir."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import onnx
import pytest
from google.protobuf.unknown_fields import UnknownFieldSet
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.infer_type import InferInput, InferRequest
from onnx import TensorProto, helper

from berth.artifact import (
    MODEL_FILE,
    ArtifactMetadata,
    FeatureSpec,
    ModelMetrics,
    TensorSpec,
    TrainingData,
    write_metadata,
)
from berth.errors import ArtifactError
from berth.serving.codec import RestBody
from berth.serving.errors import WireError
from berth.serving.kserve_compat import OipProperties, properties_wire
from berth.wire import ModelProperties
from berth_predictor.metadata import model_metadata
from berth_predictor.model import OnnxPredictor
from berth_predictor.settings import PredictorSettings

WIDTH = 4
WEIGHTS = np.array([0.5, -1.0, 0.25, 2.0], np.float32)


def write_artifact(directory: Path) -> ArtifactMetadata:
    """``score = sigmoid(features @ WEIGHTS)`` with a dynamic batch, and its metadata."""
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["features", "w"], ["logit"]),
            helper.make_node("Sigmoid", ["logit"], ["score"]),
        ],
        "tiny",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["n", WIDTH])],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, ["n"])],
        [helper.make_tensor("w", TensorProto.FLOAT, [WIDTH], WEIGHTS.tolist())],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    directory.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(directory / MODEL_FILE))
    now = datetime.now(UTC)
    meta = ArtifactMetadata(
        name="tiny",
        version="v1-test",
        feature_service="tiny_v1",
        features=[
            FeatureSpec(name=f"f{i}", dtype="float32" if i % 2 else "int64", view="v", default=1.0)
            for i in range(WIDTH)
        ],
        inputs=[TensorSpec(name="features", shape=[-1, WIDTH])],
        outputs=[TensorSpec(name="score", shape=[-1])],
        quantization="dynamic",
        metrics=ModelMetrics(
            auc_fp32=0.8,
            auc_int8=0.8,
            logloss_fp32=0.5,
            logloss_int8=0.5,
            max_abs_diff=0.0,
            heldout_rows=1,
        ),
        training_data=TrainingData(
            start=now, end=now, train_rows=1, heldout_rows=1, positive_rate=0.5
        ),
        created_at=now,
        files={MODEL_FILE: ""},
    )
    return write_metadata(directory, meta)


@pytest.fixture
def artifact(tmp_path: Path) -> Path:
    write_artifact(tmp_path / "artifact")
    return tmp_path / "artifact"


def _ready(artifact: Path, **settings: Any) -> OnnxPredictor:
    model = OnnxPredictor("tiny", artifact, PredictorSettings(warmup_runs=1, **settings))
    model.load()
    model.start()
    deadline = time.monotonic() + 10
    while not model.ready and time.monotonic() < deadline:
        time.sleep(0.01)
    assert model.ready
    return model


def _expected(rows: np.ndarray) -> np.ndarray:
    return (1 / (1 + np.exp(-(rows @ WEIGHTS)))).astype(np.float32)


ROWS = np.array([[1, 2, 3, 4], [0.5, 0, -1, 0.25]], np.float32)


@pytest.mark.parametrize("batching", [True, False])
def test_v1_and_v2_answer_with_scores_and_the_version(artifact: Path, batching: bool) -> None:
    model = _ready(artifact, batching=batching)

    async def main() -> tuple[Any, Any, Any]:
        v1, headers = await model({"instances": ROWS.tolist()}, {"x-request-id": "abc"})
        body = json.dumps(
            {
                "inputs": [
                    {
                        "name": "features",
                        "datatype": "FP32",
                        "shape": [2, WIDTH],
                        "data": ROWS.ravel().tolist(),
                    }
                ]
            }
        ).encode()
        v2, _ = await model(RestBody("v2", body), {})
        tensor = InferInput("features", [2, WIDTH], "FP32", ROWS.ravel().tolist())
        grpc_like = InferRequest("tiny", [tensor], request_id="", from_grpc=True)
        over_grpc, _ = await model(grpc_like, {})
        return (v1, headers), v2, over_grpc

    (v1, headers), v2, over_grpc = asyncio.run(main())
    assert v1["model_version"] == "v1-test" and headers["x-model-version"] == "v1-test"
    assert headers["x-request-id"] == "abc"
    np.testing.assert_allclose(v1["predictions"], _expected(ROWS), atol=1e-6)
    rest, _ = v2.to_rest()
    assert rest["model_version"] == "v1-test" and rest["id"]  # generated when absent
    np.testing.assert_allclose(rest["outputs"][0]["data"], _expected(ROWS), atol=1e-6)
    response = over_grpc.to_grpc()
    assert response.id and response.model_version == "v1-test"
    scores = np.frombuffer(response.raw_output_contents[0], "<f4")
    np.testing.assert_allclose(scores, _expected(ROWS), atol=1e-6)


def test_bad_input_is_a_400_wire_error(artifact: Path) -> None:
    model = _ready(artifact)
    with pytest.raises(WireError) as err:
        asyncio.run(model({"instances": [[1.0] * (WIDTH - 1)]}, {}))
    assert err.value.error.status == 400 and "instances[0]" in str(err.value)


def test_the_benchmark_fault_hook_is_off_by_default_and_injects_when_set(artifact: Path) -> None:
    """BERTH_PREDICTOR_FAULT_* exist only for ``python -m benchmarks canary``."""
    body = {"instances": ROWS.tolist()}
    assert PredictorSettings().fault_latency_ms == PredictorSettings().fault_error_rate == 0
    slow = _ready(artifact, fault_latency_ms=30)
    started = time.perf_counter()
    asyncio.run(slow(body, {}))
    assert time.perf_counter() - started >= 0.03
    failing = _ready(artifact, fault_error_rate=1.0)
    with pytest.raises(WireError) as err:
        asyncio.run(failing(body, {}))
    assert err.value.error.status == 500 and "injected fault" in str(err.value.error.message)
    half = _ready(artifact, fault_error_rate=0.5)

    async def many() -> int:
        failed = 0
        for _ in range(400):
            try:
                await half(body, {})
            except WireError:
                failed += 1
        return failed

    assert 140 <= asyncio.run(many()) <= 260  # ~200 of 400


def test_not_ready_until_warm_up_and_load_runs_once(artifact: Path) -> None:
    model = OnnxPredictor("tiny", artifact, PredictorSettings(warmup_runs=1))
    assert model.load() is True
    session = model.session
    model.ready = False  # as from start() until the warm-up thread is done
    assert model.load() is False and model.session is session  # KServe's re-load: no-op
    with pytest.raises(WireError) as err:
        asyncio.run(model({"instances": ROWS.tolist()}, {}))
    assert err.value.error.status == 503
    assert err.value.error.grpc_code == grpc.StatusCode.UNAVAILABLE


def test_a_changed_byte_names_the_file(artifact: Path) -> None:
    path = artifact / MODEL_FILE
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ArtifactError) as err:
        OnnxPredictor("tiny", artifact, PredictorSettings()).load()
    assert err.value.file == MODEL_FILE
    assert "model.onnx" in err.value.message


def test_metadata_carries_the_contract_and_grpc_field_6(artifact: Path) -> None:
    model = _ready(artifact)
    assert model.meta is not None
    meta = model_metadata("tiny", model.meta)
    assert meta["versions"] == ["v1-test"] and meta["platform"] == "onnxruntime_onnx"
    assert meta["inputs"] == [{"name": "features", "datatype": "FP32", "shape": [-1, WIDTH]}]
    assert meta["outputs"] == [{"name": "score", "datatype": "FP32", "shape": [-1]}]
    assert meta["properties"] == {
        "feature_service": "tiny_v1",
        "model_version": "v1-test",
        "features": "f0,f1,f2,f3",
        "feature_dtypes": "int64,float32,int64,float32",
    }
    response = pb.ModelMetadataResponse(name="tiny", versions=["v1-test"])
    response.MergeFromString(properties_wire(meta["properties"]))
    raw = response.SerializeToString()
    kserve_view = pb.ModelMetadataResponse.FromString(raw)  # KServe's class still parses it
    assert kserve_view.name == "tiny"
    unknown = [(f.field_number, f.wire_type) for f in UnknownFieldSet(kserve_view)]
    assert unknown == [(6, 2)] * 4  # one map entry per key, as field 6 of the OIP proto
    assert dict(OipProperties.FromString(raw).properties) == meta["properties"]
    assert ModelProperties.from_metadata(meta) == ModelProperties.of(model.meta)
