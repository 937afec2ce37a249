"""The predictor client over Open Inference V2 gRPC: one ``grpc.aio`` channel, opened in the
serving loop, renewed after a call finds the predictor gone."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc
import numpy as np
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.grpc.grpc_predict_v2_pb2_grpc import GRPCInferenceServiceStub

from berth.errors import DependencyUnavailableError
from berth.observability import outgoing_headers
from berth.wire import INPUT_NAME, OUTPUT_NAME
from berth_transformer.predictor_client import (
    PREDICTOR,
    Link,
    Prediction,
    PredictorError,
    Timed,
    checked_scores,
    from_grpc_error,
    with_retries,
)

T = TypeVar("T")
_GRPC_OPTIONS = [
    ("grpc.max_send_message_length", 64 << 20),
    ("grpc.max_receive_message_length", 64 << 20),
    # Reconnect quickly after the predictor restarts (gRPC's default backoff grows to 120 s).
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 2000),
    # Each channel its own connections (gRPC shares them across equal channels by default):
    # a channel opened to retry after UNAVAILABLE must be a fresh connection.
    ("grpc.use_local_subchannel_pool", 1),
]


class GrpcPredictorClient:
    """Open Inference V2 over gRPC; the channel is opened in the serving loop and reused."""

    protocol = "grpc-v2"

    def __init__(self, host: str, model_name: str, link: Link) -> None:
        self.host, self.model_name, self.link = host, model_name, link
        self.timeout_s = link.timeout_s
        self._channel: grpc.aio.Channel | None = None
        self._stub: GRPCInferenceServiceStub | None = None
        self._generation = 0  # counts the channels opened: one renewal per failed channel
        self._closing: set[asyncio.Task[None]] = set()

    def _get_stub(self) -> GRPCInferenceServiceStub:
        if self._stub is None:
            if self.link.tls:
                credentials = self.link.grpc_credentials()
                self._channel = grpc.aio.secure_channel(self.host, credentials, _GRPC_OPTIONS)
            else:
                self._channel = grpc.aio.insecure_channel(self.host, options=_GRPC_OPTIONS)
            self._stub = GRPCInferenceServiceStub(self._channel)
            self._generation += 1
        return self._stub

    def _renew(self, generation: int) -> None:
        """A fresh channel (a new connection, through the Service to a live replica) for the
        next call, unless another call already replaced channel ``generation``; the old one
        closes once the calls it carries are done."""
        if generation != self._generation or self._channel is None:
            return
        old, self._channel, self._stub = self._channel, None, None
        task = asyncio.get_running_loop().create_task(old.close(grace=self.timeout_s))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _attempt(
        self, call: Callable[[GRPCInferenceServiceStub, float], Awaitable[T]], left_s: float
    ) -> T:
        """``call(stub, left_s)`` as one attempt of :func:`with_retries`: after UNAVAILABLE (a
        draining or vanished predictor) the channel is renewed, so a retry goes over a fresh
        connection (through the Service, to a live replica)."""
        stub = self._get_stub()
        generation = self._generation
        try:
            return await call(stub, left_s)
        except grpc.aio.AioRpcError as exc:
            if exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED):
                self._renew(generation)
            raise from_grpc_error(exc) from None
        except grpc.aio.UsageError as exc:  # the channel closed under the call
            self._renew(generation)
            raise DependencyUnavailableError(PREDICTOR, f"channel closed: {exc}") from None

    async def metadata(self) -> dict[str, Any]:
        request = pb.ModelMetadataRequest(name=self.model_name)

        async def call(stub: GRPCInferenceServiceStub, left_s: float) -> tuple[Any, Any]:
            answer = stub.ModelMetadata(request, timeout=left_s)
            return await answer, await answer.trailing_metadata()

        response, trailing = await with_retries(
            lambda left_s, _retry: self._attempt(call, left_s), self.link.retries, self.timeout_s
        )

        def tensors(items: Any) -> list[dict[str, Any]]:
            return [{"name": t.name, "datatype": t.datatype, "shape": list(t.shape)} for t in items]

        return {
            "name": response.name,
            "versions": list(response.versions),
            "platform": response.platform,
            "inputs": tensors(response.inputs),
            "outputs": tensors(response.outputs),
            "trailing_metadata": {key: value for key, value in trailing or ()},
        }

    async def infer(self, features: np.ndarray, request_id: str) -> Prediction:
        # raw_input_contents: bytes, not one protobuf float per value (10x cheaper at 50x20).
        request = pb.ModelInferRequest(
            model_name=self.model_name,
            id=request_id,
            inputs=[
                pb.ModelInferRequest.InferInputTensor(
                    name=INPUT_NAME, datatype="FP32", shape=list(features.shape)
                )
            ],
            raw_input_contents=[np.ascontiguousarray(features, dtype="<f4").tobytes()],
        )
        metadata = tuple(outgoing_headers(request_id).items())

        async def call(stub: GRPCInferenceServiceStub, left_s: float) -> pb.ModelInferResponse:
            return await stub.ModelInfer(request, timeout=left_s, metadata=metadata)

        with Timed(self.protocol):
            response = await with_retries(
                lambda left_s, _retry: self._attempt(call, left_s),
                self.link.retries,
                self.timeout_s,
            )
            return Prediction(_grpc_scores(response, len(features)), response.model_version)

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
            self._channel = self._stub = None
        for task in list(self._closing):
            task.cancel()


def _grpc_scores(response: pb.ModelInferResponse, n: int) -> np.ndarray:
    for i, output in enumerate(response.outputs):
        if output.name != OUTPUT_NAME:
            continue
        if i < len(response.raw_output_contents):
            scores = np.frombuffer(response.raw_output_contents[i], dtype="<f4")
        else:
            scores = np.asarray(output.contents.fp32_contents, dtype=np.float32)
        return checked_scores(scores, n)
    raise PredictorError(f"predictor response has no output {OUTPUT_NAME!r}")
