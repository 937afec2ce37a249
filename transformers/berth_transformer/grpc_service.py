"""The transformer's gRPC servicer: KServe's, with the OIP methods it serves differently going
through the :class:`~berth_transformer.data_plane.TransformerPlane` (as the REST routes do).

- ``ModelMetadata``: versions, platform and the request tensors, as over REST (KServe's leaves
  the versions out).
- ``ModelInfer`` honours ``model_version`` (that version answers; KServe ignores the field).
- ``ServerReady`` follows the model (false while unloaded or draining; KServe's is always true).

KServe builds the servicer inside its gRPC server from the name ``InferenceServicer`` in
``kserve.protocol.grpc.server``: :func:`install_grpc` points that name at this class
(:func:`berth.serving.kserve_compat.use_inference_servicer`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.grpc.servicer import InferenceServicer
from kserve.protocol.infer_type import InferRequest, InferResponse
from kserve.utils.utils import to_headers

from berth.errors import BerthError
from berth.serving import kserve_compat
from berth.serving.errors import WireError
from berth_transformer.data_plane import TransformerPlane

Context = Any  # grpc.aio.ServicerContext


def servicer_class(plane: TransformerPlane) -> type[InferenceServicer]:
    class BerthServicer(InferenceServicer):  # type: ignore[misc]
        async def ServerReady(
            self, request: pb.ServerReadyRequest, context: Context
        ) -> pb.ServerReadyResponse:
            return pb.ServerReadyResponse(ready=plane.ready())

        async def ModelMetadata(
            self, request: pb.ModelMetadataRequest, context: Context
        ) -> pb.ModelMetadataResponse:
            with _as_grpc():
                return pb.ModelMetadataResponse(**plane.metadata(request.name, request.version))

        async def ModelInfer(
            self, request: pb.ModelInferRequest, context: Context
        ) -> pb.ModelInferResponse:
            name, version = request.model_name, request.model_version
            with _as_grpc():
                plane.in_service(name, version)  # before KServe decodes the tensors
                self.validate_grpc_request(request)
                body = InferRequest.from_grpc(request)
                response, _ = await plane.infer(name, version, body, to_headers(context))
            assert isinstance(response, InferResponse)
            return response.to_grpc()

    return BerthServicer


@contextmanager
def _as_grpc() -> Iterator[None]:
    """A :class:`BerthError` of the data plane's checks as the gRPC status it maps to."""
    try:
        yield
    except BerthError as exc:
        raise WireError(exc) from None


def install_grpc(plane: TransformerPlane) -> None:
    kserve_compat.use_inference_servicer(servicer_class(plane))
