"""The predictor's data plane (:class:`berth.serving.data_plane.DataPlane`): one model, one
version, checked here for both transports.

``infer`` takes the transport's request as it arrived: a :class:`~berth.serving.codec.RestBody`
(decoded inside the model's call, so a bad body is counted in its metrics) or a gRPC
``ModelInferRequest`` (its tensors checked here, where KServe would refuse them without naming
the input, then decoded by KServe). A request refused before it reaches the model is counted in
``berth_predictor_request_seconds`` with its protocol and status, as the model counts the rest.
"""

from __future__ import annotations

from typing import Any

from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.infer_type import InferRequest
from kserve.utils.numpy_codec import to_np_dtype

from berth.errors import BerthError, InvalidInputError
from berth.serving.errors import WireError
from berth.serving.rest import check_model
from berth.serving.served_model import protocol_label
from berth_predictor import metrics
from berth_predictor.metadata import model_metadata
from berth_predictor.model import OnnxPredictor


class PredictorDataPlane:
    def __init__(self, model: OnnxPredictor) -> None:
        self.model = model

    @property
    def name(self) -> str:
        return str(self.model.name)

    @property
    def version(self) -> str:
        return self.model.version

    def resolve(self, name: str, version: str | None = None) -> None:
        """404 / NOT_FOUND for another model name, or a version other than the artifact's."""
        check_model(name, version, serves=self.model.name, version_served=self.model.version)

    def ready(self) -> bool:
        return bool(self.model.ready) and not self.model.guard.draining

    def model_ready(self, name: str, version: str | None = None) -> bool:
        self.resolve(name, version)
        return bool(self.model.ready)

    def metadata(self, name: str, version: str | None = None) -> dict[str, Any]:
        self.resolve(name, version)
        assert self.model.meta is not None
        return model_metadata(self.model.name, self.model.meta)

    async def infer(
        self, name: str, version: str | None, body: Any, headers: dict[str, str]
    ) -> tuple[Any, dict[str, str]]:
        try:
            self.resolve(name, version)
            if isinstance(body, pb.ModelInferRequest):
                check_tensors(body)
        except BerthError as exc:
            raise _refused(body, exc) from None
        if isinstance(body, pb.ModelInferRequest):
            body = InferRequest.from_grpc(body)
        response, response_headers = await self.model(body, headers=headers)
        return response, response_headers


def _refused(body: object, error: BerthError) -> WireError:
    """A request refused before it reaches the model (which counts the others)."""
    protocol = "grpc-v2" if isinstance(body, pb.ModelInferRequest) else protocol_label(body)
    metrics.REQUEST_SECONDS.labels(protocol, str(error.status)).observe(0.0)
    return WireError(error)


def check_tensors(request: pb.ModelInferRequest) -> None:
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
