"""The predictor as a real process (KServe ModelServer + ONNX Runtime) on free loopback ports.

One predictor for the module (small artifact from the real ``berth build``); the lifecycle
tests (tampered artifact, warm-up, workers) start their own. Every wait is bounded and every
process is stopped.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
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
from berth.scrape import Metrics, scrape
from berth.stack import LOOPBACK, ServerProcess, free_port
from berth_predictor.metadata import read_properties

pytestmark = pytest.mark.integration
NAME = "driver-ranking"


class Predictor:
    def __init__(self, artifact: Path, env: dict[str, str] | None = None) -> None:
        self.http, self.grpc = free_port(), free_port()
        self.base = f"http://{LOOPBACK}:{self.http}"
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
            env={"BERTH_PREDICTOR_LISTEN_HOST": LOOPBACK, **(env or {})},
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

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(self.base + path, timeout=5) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as err:
            return err.code, err.read()

    def metrics(self) -> Metrics:
        return scrape(self.base)


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


async def _grpc(port: int, request: Any, method: str = "ModelInfer", metadata: Any = None) -> Any:
    async with grpc.aio.insecure_channel(f"{LOOPBACK}:{port}") as channel:
        call = getattr(pbg.GRPCInferenceServiceStub(channel), method)(
            request, metadata=metadata, timeout=10
        )
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
    assert response.platform == "onnxruntime_onnx"
    assert read_properties(response.SerializeToString()) == props  # OIP field 6
    assert dict(trailing) == props  # the same keys for clients built on KServe's proto
    info = {"feature_service": "driver_ranking_v1", "name": NAME, "version": meta.version}
    assert predictor.metrics().value("berth_predictor_model_info", **info) == 1


def test_every_answer_carries_the_version_and_a_request_id(
    predictor: Predictor, built: tuple[Path, Path]
) -> None:
    version = read_metadata(built[1]).version
    row = np.ones((1, 20), np.float32)
    v1 = json.dumps({"instances": row.tolist()}).encode()
    status, headers, body = predictor.post(f"/v1/models/{NAME}:predict", v1, {"x-request-id": "a1"})
    assert status == 200 and json.loads(body)["model_version"] == version
    assert headers["x-request-id"] == "a1" and headers["x-model-version"] == version

    # V2 REST without "id" answers with the x-request-id, or a generated one without it
    for sent, expected in (({"x-request-id": "b2"}, "b2"), ({}, None)):
        status, headers, body = predictor.post(f"/v2/models/{NAME}/infer", _v2(), sent)
        answer = json.loads(body)
        assert status == 200 and answer["model_version"] == version
        assert answer["id"] == (expected or headers["x-request-id"]) and answer["id"]

    response, _ = asyncio.run(
        _grpc(predictor.grpc, _grpc_request(row), metadata=(("x-request-id", "c3"),))
    )
    assert response.id == "c3" and response.model_version == version
    response, _ = asyncio.run(_grpc(predictor.grpc, _grpc_request(row)))
    assert response.id  # generated


def test_versioned_routes_serve_the_artifact_version_only(
    predictor: Predictor, built: tuple[Path, Path]
) -> None:
    version = read_metadata(built[1]).version
    status, body = predictor.get(f"/v2/models/{NAME}/versions/{version}")
    assert status == 200 and json.loads(body)["versions"] == [version]
    assert predictor.get(f"/v2/models/{NAME}/versions/{version}/ready")[0] == 200
    status, _, body = predictor.post(f"/v2/models/{NAME}/versions/{version}/infer", _v2())
    assert status == 200 and json.loads(body)["model_version"] == version
    for path in (f"/v2/models/{NAME}/versions/v0", f"/v2/models/{NAME}/versions/v0/ready"):
        status, body = predictor.get(path)
        assert status == 404 and "v0" in json.loads(body)["error"]
    status, headers, _ = predictor.post(f"/v2/models/{NAME}/versions/v0/infer", _v2())
    assert status == 404 and headers["x-model-version"] == version  # errors carry it too
    assert predictor.post("/v2/models/other/infer", _v2())[0] == 404
    request = _grpc_request(np.ones((1, 20), np.float32))
    request.model_version = "v0"
    with pytest.raises(grpc.aio.AioRpcError) as err:
        asyncio.run(_grpc(predictor.grpc, request))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_kserve_clients_work_unchanged(predictor: Predictor, rows: np.ndarray) -> None:
    from kserve.inference_client import InferenceGRPCClient, InferenceRESTClient, RESTConfig
    from kserve.protocol.infer_type import InferInput, InferRequest

    def request(binary: bool) -> InferRequest:
        tensor = InferInput("features", list(rows.shape), "FP32")
        tensor.set_data_from_numpy(rows, binary_data=binary)
        return InferRequest(NAME, [tensor], request_id="k1")

    async def main() -> list[np.ndarray]:
        scores = []
        rest = InferenceRESTClient(RESTConfig(protocol="v2", retries=0, timeout=10))
        try:
            for binary in (False, True):
                answer = await rest.infer(predictor.base, request(binary), model_name=NAME)
                scores.append(answer.outputs[0].as_numpy())
            assert await rest.is_server_ready(predictor.base)
        finally:
            await rest.close()
        async with InferenceGRPCClient(f"{LOOPBACK}:{predictor.grpc}", timeout=10) as client:
            answer = await client.infer(request(True))
            scores.append(answer.outputs[0].as_numpy())
            assert await client.is_model_ready(NAME)
        return scores

    direct = asyncio.run(main())
    for scores in direct[1:]:
        np.testing.assert_allclose(scores, direct[0], atol=1e-6, rtol=0)


OIP_PROTO = Path(__file__).resolve().parents[3] / "shared" / "oip" / "open_inference_grpc.proto"
OIP_CLIENT = """
import json, sys, grpc
import open_inference_grpc_pb2 as pb, open_inference_grpc_pb2_grpc as pbg
with grpc.insecure_channel(sys.argv[1]) as channel:
    meta = pbg.GRPCInferenceServiceStub(channel).ModelMetadata(
        pb.ModelMetadataRequest(name=sys.argv[2]), timeout=10)
print(json.dumps({"versions": list(meta.versions), "properties": dict(meta.properties)}))
"""


def test_a_client_compiled_from_the_oip_proto_reads_properties(
    predictor: Predictor, tmp_path: Path
) -> None:
    """A third-party gRPC client (stubs from the spec, not KServe's) sees field 6."""
    if not OIP_PROTO.is_file():
        pytest.skip(f"{OIP_PROTO} not found")
    pytest.importorskip("grpc_tools")
    subprocess.run(
        [
            *(sys.executable, "-m", "grpc_tools.protoc", f"-I{OIP_PROTO.parent}"),
            *(f"--python_out={tmp_path}", f"--grpc_python_out={tmp_path}", str(OIP_PROTO)),
        ],
        check=True,
        timeout=60,
    )
    (tmp_path / "client.py").write_text(OIP_CLIENT)
    out = subprocess.run(
        [sys.executable, "client.py", f"{LOOPBACK}:{predictor.grpc}", NAME],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    answer = json.loads(out.stdout)
    _, body = predictor.get(f"/v2/models/{NAME}")
    rest = json.loads(body)
    assert answer == {"versions": rest["versions"], "properties": rest["properties"]}


def test_logs_are_json_with_request_ids_and_without_payloads(predictor: Predictor) -> None:
    marker = 7.123456789
    row = [marker] * 20
    predictor.post(f"/v1/models/{NAME}:predict", json.dumps({"instances": [row]}).encode())
    predictor.post(
        f"/v1/models/{NAME}:predict",
        json.dumps({"instances": [row[:19]]}).encode(),
        {"x-request-id": "log-check-1"},
    )
    asyncio.run(_grpc(predictor.grpc, _grpc_request(np.ones((1, 20), np.float32))))
    deadline = time.monotonic() + 5
    while "log-check-1" not in predictor.server.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    lines = [line for line in predictor.server.log().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line is JSON
    refused = [r for r in records if r.get("request_id") == "log-check-1"]
    assert refused and refused[0]["field"] == "instances[0]" and refused[0]["status"] == 400
    assert not any("7.1234" in line for line in lines)
    assert not any("grpc method" in r["event"] for r in records)  # no per-request trace lines


def test_concurrent_rows_are_batched_and_each_caller_gets_its_own(
    predictor: Predictor, built: tuple[Path, Path]
) -> None:
    import aiohttp

    meta = read_metadata(built[1])
    center = np.array([f.default for f in meta.features], np.float32)
    batch = (center * np.random.default_rng(0).uniform(0.5, 1.5, (64, 20))).astype(np.float32)
    expected = ort.InferenceSession(str(built[1] / MODEL_FILE)).run(None, {"features": batch})[0]

    def batches(metrics: Metrics) -> tuple[float, float]:
        count = metrics.value("berth_predictor_batch_rows_count")
        ones = metrics.value("berth_predictor_batch_rows_bucket", le="1.0")
        assert count is not None and ones is not None
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


BAD_V1: list[tuple[bytes, str]] = [
    (json.dumps({"rows": [[1.0] * 20]}).encode(), "instances"),
    (json.dumps({"instances": [[1.0] * 19]}).encode(), "instances[0]"),
    (json.dumps({"instances": [[1.0] * 20, ["x"] * 20]}).encode(), "instances[1]"),
    (json.dumps({"instances": [[1.0] * 20] * 2000}).encode(), "instances"),
    (json.dumps({"instances": [[1.0] * 19 + [1e39]]}).encode(), "pickup_hour"),  # inf in FP32
    (b'{"instances": [[NaN' + b", 1.0" * 19 + b"]]}", "NaN"),  # not JSON: named as the body
    (b'{"instances": [', "body"),
]


@pytest.mark.parametrize(("body", "named"), BAD_V1)
def test_bad_v1_input_is_400_naming_the_field(
    predictor: Predictor, body: bytes, named: str
) -> None:
    status, _, raw = predictor.post(f"/v1/models/{NAME}:predict", body)
    assert status == 400 and named in json.loads(raw)["error"]


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


BAD_V2: list[tuple[bytes, str]] = [
    (json.dumps({"inputs": []}).encode(), "missing input 'features'"),
    (_v2(name="feats"), "feats"),
    (_v2(datatype="INT64", data=[1] * 20), "FP32"),
    (_v2(shape=[1, 19], data=[1.0] * 19), "features"),
    (_v2(data=["1.0"] * 20), "features"),
    (_v2(data=[1.0] * 19 + [1e39]), "pickup_hour"),  # overflows float32 to inf
    (_v2(shape=[2000, 20], data=[1.0] * 40000), "features"),
    (b'{"inputs": [', "body"),
    (
        json.dumps({"inputs": [{"name": "features", "shape": [1, 20], "data": []}]}).encode(),
        "datatype",
    ),
    (
        json.dumps(
            {"inputs": [json.loads(_v2())["inputs"][0]], "outputs": [{"name": "p"}]}
        ).encode(),
        "'p'",
    ),
]


@pytest.mark.parametrize(("body", "named"), BAD_V2)
def test_bad_v2_input_is_400_naming_the_input(
    predictor: Predictor, body: bytes, named: str
) -> None:
    status, _, raw = predictor.post(f"/v2/models/{NAME}/infer", body)
    assert status == 400, raw
    assert named in json.loads(raw)["error"]


def _binary(size: int, tail: bytes, datatype: str = "FP32", length: str | None = None) -> Any:
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "features",
                    "datatype": datatype,
                    "shape": [1, 20],
                    "parameters": {"binary_data_size": size},
                }
            ]
        }
    ).encode()
    return header + tail, {
        "Inference-Header-Content-Length": length or str(len(header)),
        "Content-Type": "application/octet-stream",
    }


NAN_ROW = np.full((1, 20), np.nan, np.float32).tobytes()
BAD_BINARY: list[tuple[Any, str]] = [
    (_binary(80, NAN_ROW), "conv_rate"),
    (_binary(80, NAN_ROW[:40]), "binary_data_size 80 exceeds"),
    (_binary(79, NAN_ROW[:79]), "whole number of FP32"),
    (_binary(80, NAN_ROW, length="abc"), "inference-header-content-length"),
    (_binary(80, NAN_ROW, length="100000"), "inference-header-content-length"),
    (_binary(80, NAN_ROW, datatype="FOO"), "'features'"),
    (_binary(40, NAN_ROW), "80 bytes follow"),
]


@pytest.mark.parametrize(("request_", "named"), BAD_BINARY)
def test_bad_binary_tensor_is_400_naming_the_field(
    predictor: Predictor, request_: Any, named: str
) -> None:
    body, headers = request_
    status, _, raw = predictor.post(f"/v2/models/{NAME}/infer", body, headers)
    assert status == 400, raw
    assert named in json.loads(raw)["error"]


def _two_raw_buffers() -> pb.ModelInferRequest:
    request = _grpc_request(np.ones((1, 20), np.float32))
    request.raw_input_contents.append(request.raw_input_contents[0])
    return request


def _nan_rows() -> np.ndarray:
    x = np.ones((2, 20), np.float32)
    x[1, 3] = np.nan
    return x


@pytest.mark.parametrize(
    ("request_factory", "named"),
    [
        (lambda: _grpc_request(np.ones((1, 20), np.float32), name="x"), "'x'"),
        (lambda: _grpc_request(np.ones((1, 19), np.float32)), "features"),
        (lambda: _grpc_request(np.ones((1, 20), np.int64), datatype="INT64"), "FP32"),
        (lambda: _grpc_request(np.ones((1, 20), np.float32), datatype="FOO"), "'features'"),
        (lambda: _grpc_request(_nan_rows()), "trips_last_hour"),
        (lambda: _grpc_request(np.ones((2000, 20), np.float32)), "features"),
        (lambda: pb.ModelInferRequest(model_name=NAME), "missing input 'features'"),
        (lambda: _two_raw_buffers(), "raw_input_contents"),
    ],
)
def test_bad_grpc_input_is_invalid_argument(
    predictor: Predictor, request_factory: Any, named: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        asyncio.run(_grpc(predictor.grpc, request_factory()))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert named in err.value.details()


def test_bad_input_never_leaves_a_500_in_the_metrics(predictor: Predictor) -> None:
    counts = predictor.metrics().select("berth_predictor_request_seconds_count")
    assert any(s.labels["outcome"] == "400" and s.value > 0 for s in counts)
    assert not any(s.labels["outcome"].startswith("5") for s in counts)


@pytest.mark.parametrize("name", [MODEL_FILE, "metadata.json"])
def test_tampered_artifact_never_turns_ready_and_log_names_the_file(
    artifact_copy: Path, name: str
) -> None:
    path = artifact_copy / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    p = Predictor(artifact_copy)
    p.server.start()
    try:
        assert p.server.proc is not None
        p.server.proc.wait(60)
        assert not p.server.is_ready()
        assert p.server.proc.returncode != 0
        refusal = [json.loads(line) for line in p.server.log().splitlines() if "refusing" in line]
        assert refusal and refusal[0]["file"] == name and "verification" in refusal[0]["event"]
    finally:
        p.server.stop()


def test_not_ready_until_warm_up_finished(built: tuple[Path, Path]) -> None:
    """Live but not ready while warming up; gRPC work is UNAVAILABLE and does not cut it short."""
    p = Predictor(built[1], env={"BERTH_PREDICTOR_WARMUP_RUNS": "4000"})
    p.server.start()
    try:
        statuses: list[int] = []
        grpc_codes: list[grpc.StatusCode] = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            status, _ = p.get("/v2/health/ready") if _listening(p) else (0, b"")
            if status == 200:
                statuses.append(status)
                break
            if status == 503:
                statuses.append(status)
                assert p.get("/v2/health/live")[0] == 200
                if not grpc_codes:
                    grpc_codes.append(_grpc_code(p.grpc))
                    assert p.get("/v2/health/ready")[0] == 503  # a request did not load it
            time.sleep(0.05)
        assert 503 in statuses and statuses[-1] == 200
        assert grpc_codes == [grpc.StatusCode.UNAVAILABLE]
        log = p.server.log()
        assert "model ready" in log and "warmup_seconds" in log
    finally:
        p.server.stop()


def _listening(p: Predictor) -> bool:
    try:
        p.get("/v2/health/live")
    except OSError:
        return False
    return True


def _grpc_code(port: int) -> grpc.StatusCode:
    try:
        asyncio.run(_grpc(port, _grpc_request(np.ones((1, 20), np.float32))))
    except grpc.aio.AioRpcError as err:
        return err.code()
    return grpc.StatusCode.OK


def test_more_than_one_worker_fails_at_start_with_the_reason(built: tuple[Path, Path]) -> None:
    p = Predictor(built[1])
    p.server.args += ["--workers", "2"]
    p.server.start()
    assert p.server.proc is not None
    assert p.server.proc.wait(60) == 2
    refusal = json.loads(p.server.log().strip().splitlines()[-1])
    assert refusal["setting"] == "--workers" and refusal["reason"].startswith("must be 1")
