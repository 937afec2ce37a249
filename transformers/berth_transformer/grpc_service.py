"""KServe's gRPC servicer with the transformer's model metadata (versions, platform and the
request tensors, as over REST; KServe's leaves the versions out), and ``ModelInfer`` honouring
``model_version`` (that version answers; KServe ignores the field), and ``ServerReady``
following the model (false while unloaded or draining; KServe's is always true).

KServe builds the servicer inside its gRPC server from the name ``InferenceServicer`` in
``kserve.protocol.grpc.server``: :func:`install_grpc` points that name at this class.
"""

from __future__ import annotations

from typing import Any

from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.grpc import server as grpc_server
from kserve.protocol.grpc.servicer import InferenceServicer

from berth.errors import BerthError
from berth.serving.errors import WireError
from berth.serving.rest import check_model
from berth_transformer import routing

Context = Any  # grpc.aio.ServicerContext


def servicer_class(model: Any) -> type[InferenceServicer]:
    """``model``: the loaded ``FeatureTransformer``."""

    class BerthServicer(InferenceServicer):  # type: ignore[misc]
        async def ServerReady(
            self, request: pb.ServerReadyRequest, context: Context
        ) -> pb.ServerReadyResponse:
            return pb.ServerReadyResponse(ready=bool(model.ready) and not model.guard.draining)

        async def ModelMetadata(
            self, request: pb.ModelMetadataRequest, context: Context
        ) -> pb.ModelMetadataResponse:
            _target(request.name, request.version)
            return pb.ModelMetadataResponse(**model.v2_metadata())

        async def ModelInfer(self, request: pb.ModelInferRequest, context: Context) -> Any:
            pin = _target(request.model_name, request.model_version)
            with routing.pinned(pin):  # KServe awaits the model in this task
                return await super().ModelInfer(request, context)

    def _target(name: str, version: str) -> str | None:
        """NOT_FOUND for another model or version; the target serving ``version``."""
        try:
            check_model(name, serves=model.name)
            return model.router.target_of(name, version) if version else None
        except BerthError as exc:
            raise WireError(exc) from None

    return BerthServicer


def install_grpc(model: Any) -> None:
    grpc_server.InferenceServicer = servicer_class(model)
