"""The transformer's gRPC adapter in process: a real ``grpc.aio`` server with KServe's and
Berth's interceptors, over the data plane, with an in-memory reader and predictors."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import pytest
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.grpc.grpc_predict_v2_pb2_grpc import GRPCInferenceServiceStub
from kserve.protocol.grpc.interceptors import LoggingInterceptor

from berth.serving import grpc_decode
from berth.serving.client_errors import QuietInterceptor
from berth_transformer.data_plane import TransformerPlane
from berth_transformer.grpc_service import servicer_class
from berth_transformer.model import FeatureTransformer
from tests.unit.test_transformer_routing import _model

MODEL = "driver-ranking"


def _request(version: str = "", name: str = MODEL) -> pb.ModelInferRequest:
    request = pb.ModelInferRequest(model_name=name, model_version=version, id="g-1")
    for column, kind, values in (
        ("customer_id", "INT64", [7, 7]),
        ("driver_id", "INT64", [1003, 1004]),
        ("pickup_hour", "INT64", [18, 18]),
    ):
        tensor = request.inputs.add(name=column, datatype=kind, shape=[2])
        tensor.contents.int64_contents.extend(values)
    distance = request.inputs.add(name="trip_distance_km", datatype="FP32", shape=[2])
    distance.contents.fp32_contents.extend([4.2, 4.2])
    return request


def _serve(
    model: FeatureTransformer, calls: Callable[[GRPCInferenceServiceStub], Awaitable[Any]]
) -> Any:
    async def go() -> Any:
        server = grpc.aio.server(interceptors=(LoggingInterceptor(), QuietInterceptor()))
        servicer = servicer_class(TransformerPlane(model))(None, None)
        grpc_decode.add_inference_servicer(servicer, server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                return await calls(GRPCInferenceServiceStub(channel))
        finally:
            await server.stop(None)

    return asyncio.run(go())


def test_model_infer_answers_and_honours_the_version() -> None:
    model, primary, canary = _model(0.0)

    async def calls(stub: GRPCInferenceServiceStub) -> list[pb.ModelInferResponse]:
        return [await stub.ModelInfer(_request(v)) for v in ("", "v2")]

    plain, pinned = _serve(model, calls)
    assert plain.id == "g-1" and plain.model_version == "v1"
    assert list(plain.outputs[0].contents.fp32_contents) == pytest.approx([0.1003, 0.1004])
    assert pinned.model_version == "v2"
    assert (primary.calls, canary.calls) == (1, 1)


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (_request("v9"), "no version 'v9'; it serves 'v1', 'v2'"),
        (_request(name="other"), "'other' not found"),
    ],
)
def test_another_model_or_version_is_not_found(
    request_: pb.ModelInferRequest, message: str
) -> None:
    model, _, _ = _model(0.0)

    async def calls(stub: GRPCInferenceServiceStub) -> grpc.aio.AioRpcError:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.ModelInfer(request_)
        return err.value

    error = _serve(model, calls)
    assert error.code() == grpc.StatusCode.NOT_FOUND and message in (error.details() or "")


def test_metadata_and_server_readiness_follow_the_model() -> None:
    model, _, _ = _model(0.0)

    async def calls(stub: GRPCInferenceServiceStub) -> tuple[Any, ...]:
        meta = await stub.ModelMetadata(pb.ModelMetadataRequest(name=MODEL))
        ready = await stub.ServerReady(pb.ServerReadyRequest())
        model.ready = False
        return meta, ready, await stub.ServerReady(pb.ServerReadyRequest())

    meta, ready, unloaded = _serve(model, calls)
    assert list(meta.versions) == ["v1", "v2"] and meta.platform == "berth_transformer"
    assert ready.ready and not unloaded.ready
