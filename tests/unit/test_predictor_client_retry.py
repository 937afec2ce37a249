"""The transformer's gRPC predictor client sends a call once more, on a fresh connection,
after UNAVAILABLE (a draining predictor), within its timeout. Against a real ``grpc.aio``
server on loopback that refuses the first connection it sees, as a draining predictor does."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import numpy as np
import pytest
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc as pb_grpc
from prometheus_client import REGISTRY

from berth.errors import DependencyUnavailableError
from berth.stack import LOOPBACK, free_port
from berth_transformer.predictor_client import GrpcPredictorClient, Link


class Draining(pb_grpc.GRPCInferenceServiceServicer):  # type: ignore[misc]
    """UNAVAILABLE on the first ``refuse`` connections (by peer address), scores after."""

    def __init__(self, refuse: int) -> None:
        self.refuse = refuse
        self.peers: list[str] = []

    async def ModelInfer(self, request: pb.ModelInferRequest, context: Any) -> Any:
        if context.peer() not in self.peers:
            self.peers.append(context.peer())
        if self.peers.index(context.peer()) < self.refuse:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "server shutting down")
        n = request.inputs[0].shape[0]
        return pb.ModelInferResponse(
            model_version="v1",
            outputs=[
                pb.ModelInferResponse.InferOutputTensor(name="score", datatype="FP32", shape=[n])
            ],
            raw_output_contents=[np.zeros(n, "<f4").tobytes()],
        )


async def _infer_through(servicer: Draining) -> Any:
    server = grpc.aio.server()
    pb_grpc.add_GRPCInferenceServiceServicer_to_server(servicer, server)
    port = free_port()
    server.add_insecure_port(f"{LOOPBACK}:{port}")
    await server.start()
    client = GrpcPredictorClient(f"{LOOPBACK}:{port}", "driver-ranking", Link(timeout_s=2.0))
    try:
        return await client.infer(np.ones((3, 4), np.float32), "rid-1")
    finally:
        await client.close()
        await server.stop(None)


def _retries() -> float:
    return REGISTRY.get_sample_value("berth_transformer_predictor_retries_total") or 0.0


def test_unavailable_is_sent_once_more_on_a_fresh_connection() -> None:
    before = _retries()
    servicer = Draining(refuse=1)
    prediction = asyncio.run(_infer_through(servicer))
    assert prediction.scores.shape == (3,)
    assert len(servicer.peers) == 2  # the retry came on a new connection
    assert _retries() == before + 1


def test_only_once() -> None:
    servicer = Draining(refuse=5)
    with pytest.raises(DependencyUnavailableError):
        asyncio.run(_infer_through(servicer))
    assert len(servicer.peers) == 2
