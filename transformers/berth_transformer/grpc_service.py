"""KServe's gRPC servicer with the transformer's model metadata (versions, platform and the
request tensors, as over REST; KServe's leaves the versions out).

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

Context = Any  # grpc.aio.ServicerContext


def servicer_class(model: Any) -> type[InferenceServicer]:
    """``model``: the loaded ``FeatureTransformer``."""

    class BerthServicer(InferenceServicer):  # type: ignore[misc]
        async def ModelMetadata(
            self, request: pb.ModelMetadataRequest, context: Context
        ) -> pb.ModelMetadataResponse:
            try:
                check_model(
                    request.name,
                    request.version,
                    serves=model.name,
                    version_served=model.model_version,
                )
            except BerthError as exc:
                raise WireError(exc) from None
            return pb.ModelMetadataResponse(**model.v2_metadata())

    return BerthServicer


def install_grpc(model: Any) -> None:
    grpc_server.InferenceServicer = servicer_class(model)
