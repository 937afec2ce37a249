"""What KServe's V2 endpoints leave out, added on its own app and gRPC servicer.

- Model metadata carries the OIP ``properties`` map (FeatureService, model version, feature
  names and dtypes) so the transformer can check its contract. KServe's REST response model
  drops unknown keys, so the REST route is Berth's; KServe's compiled gRPC proto has no
  ``properties`` field, so gRPC sends the same keys as trailing metadata, and ``versions``.
- Server readiness (``/v2/health/ready``, gRPC ``ServerReady``) is false until every model
  finished its warm-up; KServe's answers true as soon as the process listens.
"""

from __future__ import annotations

from typing import Any

import grpc
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.grpc import server as grpc_server
from kserve.protocol.grpc.servicer import InferenceServicer

from berth.artifact import ArtifactMetadata
from berth_predictor.model import OnnxPredictor

PLATFORM = "onnxruntime_onnx"


def properties(meta: ArtifactMetadata) -> dict[str, str]:
    return {
        "feature_service": meta.feature_service,
        "model_version": meta.version,
        "features": ",".join(f.name for f in meta.features),
        "feature_dtypes": ",".join(f.dtype for f in meta.features),
    }


def model_metadata(model: OnnxPredictor) -> dict[str, Any]:
    assert model.meta is not None
    meta = model.meta
    return {
        "name": model.name,
        "versions": [meta.version],
        "platform": PLATFORM,
        "inputs": [t.model_dump() for t in meta.inputs],
        "outputs": [t.model_dump() for t in meta.outputs],
        "properties": properties(meta),
    }


def install_routes(app: FastAPI, model: OnnxPredictor) -> None:
    """Register before KServe's routes (it adds its own when the server starts): first wins."""

    async def metadata() -> dict[str, Any]:
        return model_metadata(model)

    async def ready() -> JSONResponse:
        return JSONResponse({"ready": model.ready}, status_code=200 if model.ready else 503)

    app.add_api_route(f"/v2/models/{model.name}", metadata, methods=["GET"])
    app.add_api_route(f"/v2/models/{model.name}/versions/{{version}}", metadata, methods=["GET"])
    app.add_api_route("/v2/health/ready", ready, methods=["GET"])


def install_grpc(model: OnnxPredictor) -> None:
    class BerthServicer(InferenceServicer):  # type: ignore[misc]
        async def ServerReady(
            self, request: pb.ServerReadyRequest, context: grpc.aio.ServicerContext
        ) -> pb.ServerReadyResponse:
            return pb.ServerReadyResponse(ready=bool(model.ready))

        async def ModelMetadata(
            self, request: pb.ModelMetadataRequest, context: grpc.aio.ServicerContext
        ) -> pb.ModelMetadataResponse:
            if request.name != model.name:
                await context.abort(grpc.StatusCode.NOT_FOUND, f"model {request.name} not found")
            meta = model_metadata(model)
            context.set_trailing_metadata(tuple(meta["properties"].items()))
            return pb.ModelMetadataResponse(
                name=meta["name"],
                versions=meta["versions"],
                platform=meta["platform"],
                inputs=meta["inputs"],
                outputs=meta["outputs"],
            )

    grpc_server.InferenceServicer = BerthServicer
