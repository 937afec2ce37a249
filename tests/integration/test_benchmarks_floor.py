"""The predictor floor of ``benchmarks compare`` (:mod:`benchmarks.predictor_floor`) answers the
load generator's own V2 requests, over REST and gRPC, as a V2 predictor: it is measured with
the same requests as the peers, so a floor that errors would report an empty row."""

from __future__ import annotations

import json
from pathlib import Path

import grpc
import httpx
from kserve.protocol.grpc.grpc_predict_v2_pb2_grpc import GRPCInferenceServiceStub

from benchmarks import payloads, peers
from benchmarks.payloads import MODEL


def test_the_predictor_floor_answers_v2_requests_over_rest_and_grpc(
    built: tuple[Path, Path], tmp_path: Path
) -> None:
    floor = peers.start_floor(built[1], tmp_path / "logs")
    try:
        floor.wait_ready()
        assert floor.error is None
        matrix = payloads.feature_rows(1, 10)[0]

        rest = floor.targets()["rest_v2"] + payloads.rest_path("v2")
        response = httpx.post(rest, content=payloads.predictor_v2_body(matrix), timeout=10)
        assert response.status_code == 200
        output = json.loads(response.content)["outputs"][0]
        assert output["shape"] == [10, 1] and len(output["data"]) == 10

        with grpc.insecure_channel(floor.targets()["grpc_v2"]) as channel:
            stub = GRPCInferenceServiceStub(channel)
            answer = stub.ModelInfer(payloads.predictor_grpc_request(matrix, MODEL), timeout=10)
        assert answer.model_name == MODEL
        assert list(answer.outputs[0].shape) == [10, 1]
        assert len(answer.outputs[0].contents.fp32_contents) == 10
    finally:
        floor.stop()
