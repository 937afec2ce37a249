"""The predictor's REST adapter in process (FastAPI ``TestClient``) over its data plane and a
tiny real ONNX artifact; the real-process tests are in tests/integration."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from berth.artifact import read_metadata
from berth.serving.errors import install_rest_handler
from berth.wire import ModelProperties
from berth_predictor.data_plane import PredictorDataPlane
from berth_predictor.rest import install_routes
from tests.unit.test_predictor_model import ROWS, WIDTH, _expected, _ready, write_artifact


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    write_artifact(tmp_path / "artifact")
    app = FastAPI()
    install_rest_handler(app)
    front = install_routes(app, PredictorDataPlane(_ready(tmp_path / "artifact")))
    with TestClient(front.app(app)) as test_client:
        yield test_client


def _count(protocol: str, outcome: str) -> float:
    labels = {"protocol": protocol, "outcome": outcome}
    return REGISTRY.get_sample_value("berth_predictor_request_seconds_count", labels) or 0.0


def _v2(rows: np.ndarray) -> dict[str, object]:
    tensor = {"name": "features", "datatype": "FP32", "shape": [len(rows), WIDTH]}
    return {"inputs": [{**tensor, "data": rows.ravel().tolist()}]}


def test_v1_and_v2_score_with_the_version_and_request_id(client: TestClient) -> None:
    v1 = client.post(
        "/v1/models/tiny:predict", json={"instances": ROWS.tolist()}, headers={"x-request-id": "r1"}
    )
    assert v1.status_code == 200 and v1.headers["x-model-version"] == "v1-test"
    assert v1.headers["x-request-id"] == "r1"
    np.testing.assert_allclose(v1.json()["predictions"], _expected(ROWS), atol=1e-6)
    v2 = client.post("/v2/models/tiny/versions/v1-test/infer", json=_v2(ROWS))
    assert v2.status_code == 200 and v2.json()["model_version"] == "v1-test"
    np.testing.assert_allclose(v2.json()["outputs"][0]["data"], _expected(ROWS), atol=1e-6)


def test_another_model_or_version_is_a_404_counted_like_any_answer(client: TestClient) -> None:
    before = _count("v2", "404")
    other = client.post("/v2/models/tiny/versions/v9/infer", json=_v2(ROWS))
    assert other.status_code == 404 and "no version 'v9'" in other.json()["error"]
    assert other.headers["x-model-version"] == "v1-test"  # errors carry it too
    assert _count("v2", "404") == before + 1
    missing = client.post("/v1/models/other:predict", json={"instances": ROWS.tolist()})
    assert missing.status_code == 404 and "'other' not found" in missing.json()["error"]
    assert client.get("/v2/models/other").status_code == 404
    assert client.get("/v2/models/tiny/versions/v9/ready").status_code == 404


def test_a_body_that_does_not_decode_is_a_400_in_the_models_metrics(client: TestClient) -> None:
    before = _count("v2", "400")
    bad = client.post(
        "/v2/models/tiny/infer", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert bad.status_code == 400 and "body" in bad.json()["error"]
    assert _count("v2", "400") == before + 1


def test_metadata_carries_the_wire_contracts_properties(client: TestClient, tmp_path: Path) -> None:
    meta = client.get("/v2/models/tiny")
    assert meta.status_code == 200
    body = meta.json()
    assert body["versions"] == ["v1-test"] and body["platform"] == "onnxruntime_onnx"
    artifact = read_metadata(tmp_path / "artifact")
    assert ModelProperties.from_metadata(body) == ModelProperties.of(artifact)
    assert json.loads(client.get("/v2/models/tiny/versions/v1-test").content) == body


def test_readiness(client: TestClient) -> None:
    assert client.get("/v2/health/ready").json() == {"ready": True}
    assert client.get("/v2/models/tiny/versions/v1-test/ready").json() == {
        "name": "tiny",
        "ready": True,
    }
