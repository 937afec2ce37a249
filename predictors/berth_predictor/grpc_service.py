"""KServe's gRPC servicer with what it leaves out of the OIP for this model.

- ``ModelMetadata``: ``versions`` and the ``properties`` map as field 6 (see :mod:`metadata`);
  the same keys also go out as trailing metadata, for clients built on KServe's proto, which
  cannot read field 6.
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
from kserve.utils.numpy_codec import to_np_dtype

from berth.errors import BerthError, InvalidInputError
from berth.serving import kserve_compat
from berth.serving.errors import WireError
from berth_predictor import metrics
from berth_predictor.metadata import model_metadata
from berth_predictor.model import OnnxPredictor
from berth_predictor.rest import check_model

Context = Any  # grpc.aio.ServicerContext


def _checked(model: OnnxPredictor, name: str, version: str = "") -> None:
    try:
        check_model(model, name, version)
    except BerthError as exc:
        raise WireError(exc) from None


def _refuse(error: BerthError) -> WireError:
    """A ModelInfer refused before it reaches the model (which counts the others)."""
    metrics.REQUEST_SECONDS.labels("grpc-v2", str(error.status)).observe(0.0)
    return WireError(error)


def _check_tensors(request: pb.ModelInferRequest) -> None:
    """What KServe's decoding would refuse without naming the input (or log as an error)."""
    for tensor in request.inputs:
        if to_np_dtype(tensor.datatype.upper()) is None:
            raise InvalidInputError(
                f"input {tensor.name!r}: unknown datatype {tensor.datatype!r}", field=tensor.name
            )
    raw = len(request.raw_input_contents)
    if raw and raw != len(request.inputs):
        raise InvalidInputError(
            f"{len(request.inputs)} inputs but {raw} raw_input_contents", "raw_input_contents"
        )
    for tensor in request.inputs if raw else ():
        if tensor.HasField("contents"):
            raise InvalidInputError(
                f"input {tensor.name!r}: contents and raw_input_contents both given", tensor.name
            )


def servicer_class(model: OnnxPredictor) -> type[InferenceServicer]:
    class BerthServicer(InferenceServicer):  # type: ignore[misc]
        async def ServerReady(
            self, request: pb.ServerReadyRequest, context: Context
        ) -> pb.ServerReadyResponse:
            return pb.ServerReadyResponse(ready=bool(model.ready) and not model.guard.draining)

        async def ModelReady(
            self, request: pb.ModelReadyRequest, context: Context
        ) -> pb.ModelReadyResponse:
            _checked(model, request.name, request.version)
            return pb.ModelReadyResponse(ready=bool(model.ready))

        async def ModelMetadata(
            self, request: pb.ModelMetadataRequest, context: Context
        ) -> pb.ModelMetadataResponse:
            _checked(model, request.name, request.version)
            assert model.meta is not None
            meta = model_metadata(model.name, model.meta)
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
            try:
                check_model(model, request.model_name, request.model_version)
                _check_tensors(request)
            except BerthError as exc:
                raise _refuse(exc) from None
            return await super().ModelInfer(request, context)

    return BerthServicer


def install_grpc(model: OnnxPredictor) -> None:
    kserve_compat.use_inference_servicer(servicer_class(model))
