"""The transformer's REST adapter in process (FastAPI ``TestClient``), over its data plane, with
an in-memory reader and predictors; the real-process tests are tests/integration."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator

import numpy as np
import pytest
from fastapi import FastAPI
from prometheus_client import REGISTRY

from berth.serving.errors import install_rest_handler
from berth_transformer import routing
from berth_transformer.data_plane import TransformerPlane
from berth_transformer.model import MODEL_VERSION_HEADER, FeatureTransformer
from berth_transformer.rest import install_routes
from tests.unit.test_transformer_routing import _model

with warnings.catch_warnings():  # Starlette's notice that it prefers httpx2
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

INFER = "/v2/models/driver-ranking/infer"
COLUMNS = {
    "customer_id": ("INT64", [7, 7]),
    "driver_id": ("INT64", [1003, 1004]),
    "trip_distance_km": ("FP32", [4.2, 4.2]),
    "pickup_hour": ("INT64", [18, 18]),
}


def _v2(**extra: object) -> dict[str, object]:
    inputs = [
        {"name": name, "datatype": kind, "shape": [len(data)], "data": data}
        for name, (kind, data) in COLUMNS.items()
    ]
    return {"inputs": inputs, **extra}


@pytest.fixture
def served() -> Iterator[tuple[TestClient, FeatureTransformer]]:
    model, _, _ = _model(0.0)  # a canary (v2) that no customer's bucket reaches
    app = FastAPI()
    install_rest_handler(app)
    front = install_routes(app, TransformerPlane(model))
    with TestClient(front.app(app)) as client:
        yield client, model


def _requests(protocol: str, outcome: str) -> float:
    labels = {"protocol": protocol, "outcome": outcome}
    return REGISTRY.get_sample_value("berth_transformer_request_seconds_count", labels) or 0.0


def test_v2_infer_answers_scores_with_version_and_request_id(
    served: tuple[TestClient, FeatureTransformer],
) -> None:
    client, _ = served
    before = _requests("v2", "200")
    answer = client.post(INFER, json=_v2(id="req-1"), headers={"x-request-id": "rid-7"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["id"] == "req-1" and body["model_version"] == "v1"
    assert body["outputs"][0]["name"] == "score"
    assert body["outputs"][0]["data"] == pytest.approx([0.1003, 0.1004])
    assert "parameters" not in body["outputs"][0]  # never null
    assert answer.headers[MODEL_VERSION_HEADER] == "v1"
    assert answer.headers["x-request-id"] == "rid-7"
    assert _requests("v2", "200") == before + 1


def test_a_version_in_the_path_pins_the_target(
    served: tuple[TestClient, FeatureTransformer],
) -> None:
    client, model = served
    answer = client.post("/v2/models/driver-ranking/versions/v2/infer", json=_v2())
    assert answer.status_code == 200, answer.text
    assert answer.json()["model_version"] == "v2" and answer.headers[MODEL_VERSION_HEADER] == "v2"
    assert model.router.pick(7) == routing.PRIMARY  # the bucket alone would not go there
    missing = client.post("/v2/models/driver-ranking/versions/v9/infer", json=_v2())
    assert missing.status_code == 404
    assert missing.json() == {
        "error": "model 'driver-ranking' has no version 'v9'; it serves 'v1', 'v2'"
    }
    other = client.post("/v2/models/other/infer", json=_v2())
    assert other.status_code == 404 and "'other' not found" in other.json()["error"]


def test_a_body_that_does_not_decode_counts_in_the_request_metrics(
    served: tuple[TestClient, FeatureTransformer],
) -> None:
    client, _ = served
    before = _requests("v2", "400")
    answer = client.post(INFER, content=b'{"inputs": [', headers={"x-request-id": "bad-1"})
    assert answer.status_code == 400
    assert answer.json()["error"].startswith("request body is not valid JSON")
    assert answer.headers["x-request-id"] == "bad-1"
    short = client.post(
        INFER, content=b'{"inputs": []}', headers={"inference-header-content-length": "99"}
    )
    assert short.status_code == 400 and "inference-header-content-length" in short.text
    assert _requests("v2", "400") == before + 2


def test_binary_outputs_when_asked(served: tuple[TestClient, FeatureTransformer]) -> None:
    client, _ = served
    asked = _v2(parameters={"binary_data_output": True})
    answer = client.post(INFER, json=asked)
    assert answer.status_code == 200, answer.text
    split = int(answer.headers["inference-header-content-length"])
    header = json.loads(answer.content[:split])
    assert header["outputs"][0]["parameters"]["binary_data_size"] == 8
    scores = np.frombuffer(answer.content[split:], dtype="<f4")
    assert scores == pytest.approx([0.1003, 0.1004])


def test_metadata_and_readiness(served: tuple[TestClient, FeatureTransformer]) -> None:
    client, model = served
    meta = client.get("/v2/models/driver-ranking").json()
    assert meta["versions"] == ["v1", "v2"] and meta["platform"] == "berth_transformer"
    assert [i["name"] for i in meta["inputs"]] == list(COLUMNS)
    assert client.get("/v2/models/driver-ranking/versions/v2/ready").json() == {
        "name": "driver-ranking",
        "ready": True,
    }
    assert client.get("/v2/models/driver-ranking/versions/v3").status_code == 404
    model.ready = False  # unloaded: metadata and inference 404, readiness 503
    assert client.get("/v2/health/ready").status_code == 503
    assert client.get("/v2/models/driver-ranking/versions/v1/ready").status_code == 503
    assert client.get("/v2/models/driver-ranking").status_code == 404
    assert client.post(INFER, json=_v2()).status_code == 404


def test_v1_predict_answers_scores_and_refuses_naming_the_field(
    served: tuple[TestClient, FeatureTransformer],
) -> None:
    client, model = served
    rows = [
        {"customer_id": 7, "driver_id": d, "trip_distance_km": 4.2, "pickup_hour": 18}
        for d in (1003, 1004)
    ]
    before = _requests("v1", "200")
    answer = client.post(
        "/v1/models/driver-ranking:predict",
        json={"instances": rows},
        headers={"x-request-id": "r1"},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"predictions": pytest.approx([0.1003, 0.1004]), "model_version": "v1"}
    assert answer.headers["x-request-id"] == "r1" and answer.headers[MODEL_VERSION_HEADER] == "v1"
    assert _requests("v1", "200") == before + 1
    bad = client.post("/v1/models/driver-ranking:predict", content=b"[1, 2]")
    assert bad.status_code == 400 and bad.json() == {"error": "request body must be a JSON object"}
    other = client.post("/v1/models/other:predict", json={"instances": rows})
    assert other.status_code == 404 and "'other' not found" in other.json()["error"]
    model.ready = False
    assert (
        client.post("/v1/models/driver-ranking:predict", json={"instances": rows}).status_code
        == 404
    )
