"""The predictor's gRPC adapter: KServe's servicer, with the OIP inference RPCs answered by the
data plane (:mod:`berth_predictor.data_plane`), which checks the model name and version once
for both transports.

- ``ModelMetadata``: ``versions`` and the ``properties`` map as field 6
  (:func:`berth.serving.kserve_compat.properties_wire`); the same keys also go out as trailing
  metadata, for clients built on KServe's proto, which cannot read field 6.
- ``ModelInfer``: a datatype KServe cannot decode is INVALID_ARGUMENT naming the input (KServe
  says only "invalid content type"); a ``model_version`` other than the artifact's NOT_FOUND.
- ``ServerReady`` is false until the warm-up finished, and while draining.

KServe builds the servicer inside its gRPC server, from the name ``InferenceServicer`` in
``kserve.protocol.grpc.server``: :func:`install_grpc` points that name at this class
(:func:`berth.serving.kserve_compat.use_inference_servicer`).
"""

from __future__ import annotations

from typing import Any

from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.grpc.servicer import InferenceServicer
from kserve.protocol.infer_type import InferResponse
from kserve.utils.utils import to_headers

from berth.errors import BerthError
from berth.serving import kserve_compat
from berth.serving.errors import WireError
from berth_predictor.data_plane import PredictorDataPlane

Context = Any  # grpc.aio.ServicerContext


def servicer_class(plane: PredictorDataPlane) -> type[InferenceServicer]:
    class BerthServicer(InferenceServicer):  # type: ignore[misc]
        async def ServerReady(
            self, request: pb.ServerReadyRequest, context: Context
        ) -> pb.ServerReadyResponse:
            return pb.ServerReadyResponse(ready=plane.ready())

        async def ModelReady(
            self, request: pb.ModelReadyRequest, context: Context
        ) -> pb.ModelReadyResponse:
            try:
                return pb.ModelReadyResponse(ready=plane.model_ready(request.name, request.version))
            except BerthError as exc:
                raise WireError(exc) from None

        async def ModelMetadata(
            self, request: pb.ModelMetadataRequest, context: Context
        ) -> pb.ModelMetadataResponse:
            try:
                meta = plane.metadata(request.name, request.version)
            except BerthError as exc:
                raise WireError(exc) from None
            context.set_trailing_metadata(tuple(meta["properties"].items()))
            response = pb.ModelMetadataResponse(
                name=meta["name"],
                versions=meta["versions"],
                platform=meta["platform"],
                inputs=meta["inputs"],
                outputs=meta["outputs"],
            )
            response.MergeFromString(kserve_compat.properties_wire(meta["properties"]))
            return response

        async def ModelInfer(self, request: pb.ModelInferRequest, context: Context) -> Any:
            response, _ = await plane.infer(
                request.model_name, request.model_version, request, to_headers(context)
            )
            return response.to_grpc() if isinstance(response, InferResponse) else response

    return BerthServicer


def install_grpc(plane: PredictorDataPlane) -> None:
    kserve_compat.use_inference_servicer(servicer_class(plane))
