"""The predictor as a real process (KServe ModelServer + ONNX Runtime) on free loopback ports."""

from __future__ import annotations

import asyncio
import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc as pbg

from berth.artifact import MODEL_FILE, read_metadata
from berth.testing import ServerProcess, free_port

pytestmark = pytest.mark.integration
NAME = "driver-ranking"


class Predictor:
    def __init__(self, artifact: Path, env: dict[str, str] | None = None) -> None:
        self.http, self.grpc = free_port(), free_port()
        self.base = f"http://127.0.0.1:{self.http}"
        self.server = ServerProcess(
            [
                "-m",
                "berth_predictor",
                "--model_name",
                NAME,
                "--model_dir",
                str(artifact),
                "--http_port",
                str(self.http),
                "--grpc_port",
                str(self.grpc),
            ],
            ready_url=f"{self.base}/v2/health/ready",
            env=env,
        )

    def post(
        self, path: str, body: bytes, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        req = urllib.request.Request(
            self.base + path,
            data=body,
            headers={"Content-Type": "application/json", **(headers or {})},
            method="POST",
        )
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
        except urllib.error.HTTPError as err:
            return err.code, {k.lower(): v for k, v in err.headers.items()}, err.read()

    def metrics(self) -> str:
        with urllib.request.urlopen(self.base + "/metrics", timeout=5) as resp:
            return resp.read().decode()


@pytest.fixture(scope="module")
def predictor(built: tuple[Path, Path]) -> Iterator[Predictor]:
    p = Predictor(built[1])
    p.server.start().wait_ready(120)
    yield p
    p.server.stop()


@pytest.fixture(scope="module")
def rows(built: tuple[Path, Path]) -> np.ndarray:
    _, artifact = built
    names = read_metadata(artifact).feature_names
    training = pd.read_parquet(artifact.with_name(artifact.name + ".build") / "training.parquet")
    return training[names].sample(8, random_state=2).to_numpy(np.float32)


def _grpc_request(
    x: np.ndarray, name: str = "features", datatype: str = "FP32"
) -> pb.ModelInferRequest:
    return pb.ModelInferRequest(
        model_name=NAME,
        inputs=[
            pb.ModelInferRequest.InferInputTensor(name=name, datatype=datatype, shape=list(x.shape))
        ],
        raw_input_contents=[x.tobytes()],
    )


async def _grpc(port: int, request: Any, method: str = "ModelInfer") -> Any:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = getattr(pbg.GRPCInferenceServiceStub(channel), method)(request)
        return await call, await call.trailing_metadata()


def test_all_protocols_match_direct_ort(
    predictor: Predictor, rows: np.ndarray, built: tuple[Path, Path]
) -> None:
    direct = ort.InferenceSession(str(built[1] / MODEL_FILE)).run(None, {"features": rows})[0]
    version = read_metadata(built[1]).version

    status, headers, body = predictor.post(
        f"/v1/models/{NAME}:predict", json.dumps({"instances": rows.tolist()}).encode()
    )
    v1 = json.loads(body)
    assert status == 200 and v1["model_version"] == version
    assert headers["x-model-version"] == version

    v2_body = {
        "id": "r1",
        "inputs": [
            {
                "name": "features",
                "datatype": "FP32",
                "shape": list(rows.shape),
                "data": rows.ravel().tolist(),
            }
        ],
    }
    status, _, body = predictor.post(f"/v2/models/{NAME}/infer", json.dumps(v2_body).encode())
    v2 = json.loads(body)
    assert status == 200 and v2["model_version"] == version and v2["id"] == "r1"

    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "features",
                    "datatype": "FP32",
                    "shape": list(rows.shape),
                    "parameters": {"binary_data_size": rows.nbytes},
                }
            ],
            "outputs": [{"name": "score", "parameters": {"binary_data": True}}],
        }
    ).encode()
    status, headers, body = predictor.post(
        f"/v2/models/{NAME}/infer",
        header + rows.tobytes(),
        {
            "Inference-Header-Content-Length": str(len(header)),
            "Content-Type": "application/octet-stream",
        },
    )
    assert status == 200, body
    json_len = int(headers["inference-header-content-length"])
    assert json.loads(body[:json_len])["model_version"] == version
    binary = np.frombuffer(body[json_len:], dtype="<f4")

    response, _ = asyncio.run(_grpc(predictor.grpc, _grpc_request(rows)))
    assert response.model_version == version
    over_grpc = np.frombuffer(response.raw_output_contents[0], dtype="<f4")

    for scores in (v1["predictions"], v2["outputs"][0]["data"], binary, over_grpc):
        np.testing.assert_allclose(np.asarray(scores, np.float32), direct, atol=1e-6, rtol=0)


def test_metadata_reports_the_contract(predictor: Predictor, built: tuple[Path, Path]) -> None:
    meta = read_metadata(built[1])
    with urllib.request.urlopen(f"{predictor.base}/v2/models/{NAME}", timeout=5) as resp:
        rest = json.loads(resp.read())
    assert rest["inputs"] == [{"name": "features", "datatype": "FP32", "shape": [-1, 20]}]
    assert rest["outputs"] == [{"name": "score", "datatype": "FP32", "shape": [-1]}]
    assert rest["versions"] == [meta.version]
    props = rest["properties"]
    assert props["feature_service"] == "driver_ranking_v1"
    assert props["features"].split(",") == meta.feature_names
    response, trailing = asyncio.run(
        _grpc(predictor.grpc, pb.ModelMetadataRequest(name=NAME), "ModelMetadata")
    )
    assert list(response.versions) == [meta.version]
    assert dict(trailing) == props
    assert (
        f'feature_service="driver_ranking_v1",name="{NAME}",version="{meta.version}"'
        in predictor.metrics()
    )


def test_concurrent_rows_are_batched_and_each_caller_gets_its_own(
    predictor: Predictor, built: tuple[Path, Path]
) -> None:
    import aiohttp

    meta = read_metadata(built[1])
    center = np.array([f.default for f in meta.features], np.float32)
    batch = (center * np.random.default_rng(0).uniform(0.5, 1.5, (64, 20))).astype(np.float32)
    expected = ort.InferenceSession(str(built[1] / MODEL_FILE)).run(None, {"features": batch})[0]

    def batches(text: str) -> tuple[float, float]:
        count = float(re.search(r"^berth_predictor_batch_rows_count (\S+)", text, re.M)[1])
        ones = float(
            re.search(r'^berth_predictor_batch_rows_bucket\{le="1.0"\} (\S+)', text, re.M)[1]
        )
        return count, ones

    before = batches(predictor.metrics())

    async def fire() -> list[float]:
        async with aiohttp.ClientSession() as session:

            async def one(row: np.ndarray) -> float:
                async with session.post(
                    f"{predictor.base}/v1/models/{NAME}:predict", json={"instances": [row.tolist()]}
                ) as resp:
                    assert resp.status == 200
                    return (await resp.json())["predictions"][0]

            return await asyncio.gather(*(one(r) for r in batch))

    got = asyncio.run(fire())
    np.testing.assert_allclose(np.asarray(got, np.float32), expected, atol=1e-6, rtol=0)
    count, ones = (a - b for a, b in zip(batches(predictor.metrics()), before, strict=True))
    assert count < 64, "64 single-row requests should share ORT runs"
    assert count - ones >= 1, "at least one run had more than one row"


BAD_V1 = [
    ({"rows": [[1.0] * 20]}, "instances"),
    ({"instances": [[1.0] * 19]}, "instances[0]"),
    ({"instances": [[1.0] * 20, ["x"] * 20]}, "instances[1]"),
    ({"instances": [[1.0] * 20] * 2000}, "instances"),
]


@pytest.mark.parametrize(("body", "field"), BAD_V1)
def test_bad_v1_input_is_400_naming_the_field(predictor: Predictor, body: Any, field: str) -> None:
    status, _, raw = predictor.post(f"/v1/models/{NAME}:predict", json.dumps(body).encode())
    assert status == 400 and field in json.loads(raw)["error"]


def _v2(
    name: str = "features",
    datatype: str = "FP32",
    shape: list[int] | None = None,
    data: list[Any] | None = None,
) -> bytes:
    shape = shape or [1, 20]
    return json.dumps(
        {
            "inputs": [
                {
                    "name": name,
                    "datatype": datatype,
                    "shape": shape,
                    "data": data if data is not None else [1.0] * 20,
                }
            ]
        }
    ).encode()


BAD_V2 = [
    (json.dumps({"inputs": []}).encode(), "features"),
    (_v2(name="feats"), "feats"),
    (_v2(datatype="INT64", data=[1] * 20), "FP32"),
    (_v2(shape=[1, 19], data=[1.0] * 19), "features"),
    (_v2(data=[1.0] * 19 + [1e39]), "features"),  # overflows float32 to inf
    (_v2(shape=[2000, 20], data=[1.0] * 40000), "features"),
    (b'{"inputs": [', "body"),
]


@pytest.mark.parametrize(("body", "named"), BAD_V2)
def test_bad_v2_input_is_400_naming_the_input(
    predictor: Predictor, body: bytes, named: str
) -> None:
    status, _, raw = predictor.post(f"/v2/models/{NAME}/infer", body)
    assert status == 400, raw
    assert named in json.loads(raw).get("error", raw.decode())


def test_nan_is_400_naming_the_feature(predictor: Predictor) -> None:
    status, _, _raw = predictor.post(
        f"/v1/models/{NAME}:predict", b'{"instances": [[NaN' + b", 1.0" * 19 + b"]]}"
    )
    assert status == 400  # KServe's JSON parser rejects NaN literals
    x = np.ones((2, 20), np.float32)
    x[1, 3] = np.nan
    with pytest.raises(grpc.aio.AioRpcError) as err:
        asyncio.run(_grpc(predictor.grpc, _grpc_request(x)))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "trips_last_hour" in err.value.details()


@pytest.mark.parametrize(
    ("request_factory", "named"),
    [
        (lambda: _grpc_request(np.ones((1, 20), np.float32), name="x"), "'x'"),
        (lambda: _grpc_request(np.ones((1, 19), np.float32)), "features"),
        (lambda: _grpc_request(np.ones((1, 20), np.int64), datatype="INT64"), "FP32"),
    ],
)
def test_bad_grpc_input_is_invalid_argument(
    predictor: Predictor, request_factory: Any, named: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        asyncio.run(_grpc(predictor.grpc, request_factory()))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert named in err.value.details()


def test_tampered_artifact_never_turns_ready_and_log_names_the_file(artifact_copy: Path) -> None:
    path = artifact_copy / MODEL_FILE
    data = bytearray(path.read_bytes())
    data[100] ^= 0xFF
    path.write_bytes(bytes(data))
    p = Predictor(artifact_copy)
    p.server.start()
    try:
        assert p.server.proc is not None
        p.server.proc.wait(60)
        assert not p.server.is_ready()
        assert p.server.proc.returncode != 0
        assert "model.onnx" in p.server.log() and "verification" in p.server.log()
    finally:
        p.server.stop()


def test_not_ready_until_warm_up_finished(built: tuple[Path, Path]) -> None:
    p = Predictor(built[1], env={"BERTH_PREDICTOR_WARMUP_RUNS": "4000"})
    p.server.start()
    try:
        statuses = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(p.server.ready_url, timeout=2) as resp:
                    statuses.append(resp.status)
                    break
            except urllib.error.HTTPError as err:
                statuses.append(err.code)
            except OSError:
                pass  # not listening yet
            time.sleep(0.05)
        assert 503 in statuses and statuses[-1] == 200
        log = p.server.log()
        assert "model ready" in log and "warmup_seconds" in log
    finally:
        p.server.stop()


def test_more_than_one_worker_fails_at_start_with_the_reason(built: tuple[Path, Path]) -> None:
    p = Predictor(built[1])
    p.server.args += ["--workers", "2"]
    p.server.start()
    assert p.server.proc is not None
    assert p.server.proc.wait(60) == 2
    assert "--workers must be 1" in p.server.log()
