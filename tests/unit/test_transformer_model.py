"""FeatureTransformer's lifecycle with an in-memory reader and predictor: protocols, ids, errors."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from typing import Any

import grpc
import numpy as np
import pytest
from fastapi import FastAPI
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.infer_type import InferInput, InferRequest, InferResponse
from prometheus_client import REGISTRY

from berth.errors import BerthError, DependencyUnavailableError, OverloadedError
from berth.serving.errors import WireError, install_rest_handler, rest_response
from berth_transformer.__main__ import build_parser
from berth_transformer.features import ReadReport
from berth_transformer.model import FeatureTransformer
from berth_transformer.predictor_client import Prediction
from berth_transformer.schema import Candidates
from berth_transformer.settings import TransformerSettings

ROWS = [
    {"customer_id": 7, "driver_id": 1003, "trip_distance_km": 4.2, "pickup_hour": 18},
    {"customer_id": 7, "driver_id": 1001, "trip_distance_km": 4.2, "pickup_hour": 18},
    {"customer_id": 7, "driver_id": 1002, "trip_distance_km": 4.2, "pickup_hour": 18},
]


class FakeReader:
    """Feature row = (driver_id, trip_distance_km): enough to see order and values."""

    async def read(self, c: Candidates) -> tuple[np.ndarray, ReadReport]:
        return np.stack([c.driver_id, c.trip_distance_km], axis=1).astype(np.float32), ReadReport()


class FakePredictor:
    protocol = "grpc-v2"

    def __init__(self) -> None:
        self.calls: list[tuple[np.ndarray, str]] = []
        self.error: Exception | None = None

    async def infer(self, features: np.ndarray, request_id: str) -> Prediction:
        self.calls.append((features, request_id))
        if self.error:
            raise self.error
        return Prediction(features[:, 0] / np.float32(10_000), "v1-test")


@pytest.fixture
def model() -> FeatureTransformer:
    m = FeatureTransformer("driver-ranking", TransformerSettings(max_candidates=5), "unused:1")
    m.reader = FakeReader()  # type: ignore[assignment]
    m.predictor = FakePredictor()
    m.ready = True
    return m


def run(model: FeatureTransformer, body: Any, headers: dict[str, str] | None = None) -> Any:
    return asyncio.run(model(body, headers=headers))


def v2_request(request_id: str | None = None) -> InferRequest:
    def col(name: str, dtype: str) -> InferInput:
        return InferInput(name, [len(ROWS)], dtype, [r[name] for r in ROWS])

    return InferRequest(
        "driver-ranking",
        [
            col("customer_id", "INT64"),
            col("driver_id", "INT64"),
            col("trip_distance_km", "FP32"),
            col("pickup_hour", "INT64"),
        ],
        request_id=request_id,
    )


def test_v1_scores_in_input_order_with_request_id(model: FeatureTransformer) -> None:
    response, headers = run(model, {"instances": ROWS}, {"x-request-id": "rid-1"})
    assert response == {
        "predictions": pytest.approx([0.1003, 0.1001, 0.1002]),
        "model_version": "v1-test",
    }
    assert headers["x-request-id"] == "rid-1"
    features, request_id = model.predictor.calls[0]  # type: ignore[attr-defined]
    assert request_id == "rid-1"  # forwarded to the predictor
    assert features.dtype == np.float32
    assert features.shape == (3, 2)
    assert features[0, 1] == np.float32(4.2)


def test_v2_rest_without_id_gets_one(model: FeatureTransformer) -> None:
    response, headers = run(model, v2_request(), {})
    assert isinstance(response, InferResponse)
    assert response.id
    assert response.id == headers["x-request-id"]
    rest, _ = response.to_rest()
    assert rest["outputs"][0]["name"] == "score"
    assert rest["outputs"][0]["datatype"] == "FP32"
    assert rest["outputs"][0]["shape"] == [3]
    assert rest["model_version"] == "v1-test"


def test_v2_rest_echoes_the_request_id(model: FeatureTransformer) -> None:
    response, _ = run(model, v2_request("client-id"), {})
    assert response.id == "client-id"


def test_grpc_request_answers_grpc(model: FeatureTransformer) -> None:
    request = v2_request("g-1").to_grpc()
    response, _ = run(model, InferRequest.from_grpc(request), {"x-request-id": "g-1"})
    out = response.to_grpc()
    assert isinstance(out, pb.ModelInferResponse)
    assert out.id == "g-1"
    assert list(out.outputs[0].contents.fp32_contents) == pytest.approx([0.1003, 0.1001, 0.1002])


def test_errors_keep_status_and_hide_internals(model: FeatureTransformer) -> None:
    model.predictor.error = DependencyUnavailableError(  # type: ignore[attr-defined]
        "predictor", "connect to 10.0.0.7:9000 refused"
    )
    before = REGISTRY.get_sample_value(
        "berth_transformer_request_seconds_count", {"protocol": "v1", "outcome": "503"}
    )
    with pytest.raises(WireError) as err:
        run(model, {"instances": ROWS})
    assert err.value.status_code == grpc.StatusCode.UNAVAILABLE
    assert err.value.details == "predictor unavailable, retry later"
    assert err.value.error.status == 503
    after = REGISTRY.get_sample_value(
        "berth_transformer_request_seconds_count", {"protocol": "v1", "outcome": "503"}
    )
    assert after == (before or 0) + 1


def test_bad_input_is_invalid_argument(model: FeatureTransformer) -> None:
    with pytest.raises(WireError) as err:
        run(model, {"instances": ROWS * 2})  # max_candidates=5
    assert err.value.status_code == grpc.StatusCode.INVALID_ARGUMENT
    assert "at most 5" in err.value.details


def test_rest_mapping_status_body_and_retry_after() -> None:
    app = FastAPI()
    install_rest_handler(app)
    assert {WireError, BerthError} <= set(app.exception_handlers)
    busy = rest_response(OverloadedError("queue full", retry_after_s=2), "rid-9")
    assert busy.status_code == 429
    assert busy.headers["retry-after"] == "2"
    assert busy.headers["x-request-id"] == "rid-9"
    down = rest_response(DependencyUnavailableError("online store", "redis at 10.1.1.1 refused"))
    assert down.status_code == 503
    assert json.loads(down.body) == {"error": "online store unavailable, retry later"}


def test_cli_extends_kserve_flags_without_conflict() -> None:
    args = build_parser().parse_args(
        ["--model_name", "driver-ranking", "--predictor_host", "p:81", "--http_port", "9"]
    )
    assert args.predictor_protocol == "v2"  # REST V2: measured cheaper than gRPC
    assert args.enable_latency_logging is False
    assert args.http_port == 9


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BERTH_TRANSFORMER_MISSING_POLICY", '{"customer_profile": "reject"}')
    monkeypatch.setenv("BERTH_TRANSFORMER_FEATURE_TIMEOUT_MS", "75")
    s = TransformerSettings()
    assert s.missing_policy_for("customer_profile") == "reject"
    assert s.missing_policy_for("driver_profile") == "default"
    assert s.stale_policy_for("driver_hourly_stats") == "default"
    assert s.feature_timeout_ms == 75
    assert s.feature_store_yaml == s.feature_repo / "feature_store.yaml"


def test_importing_the_transformer_loads_neither_torch_nor_feast() -> None:
    code = (
        "import sys, berth_transformer.model, berth_transformer.__main__, berth.local\n"
        "print(sorted(m for m in ('torch', 'feast') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stderr
