"""gRPC requests that do not decode are INVALID_ARGUMENT, not UNKNOWN / INTERNAL.

grpcio answers a request whose bytes are not the method's protobuf message with ``UNKNOWN``
(the deserializer raised), and KServe's ``InferRequest.from_grpc`` raises ``IndexError`` (500)
on a ``ModelInferRequest`` with more ``raw_input_contents`` than inputs.
:func:`add_inference_servicer` (called by :class:`berth.serving.grpc_server.BerthGrpcServer`)
registers KServe's servicer with every method's deserializer wrapped, so that such a request
reaches the method as a :class:`Malformed` value, which the wrapped method answers with
``INVALID_ARGUMENT``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.message import DecodeError
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc


@dataclass(frozen=True)
class Malformed:
    """What the wrapped deserializer returns for bytes it cannot decode."""

    reason: str


def _lenient(deserialize: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    def decode(data: bytes) -> Any:
        try:
            message = deserialize(data)
        except (DecodeError, ValueError) as exc:
            return Malformed(f"request is not a valid protobuf message: {str(exc)[:120]}")
        if isinstance(message, pb.ModelInferRequest) and len(message.raw_input_contents) not in (
            0,
            len(message.inputs),
        ):
            return Malformed(
                f"raw_input_contents has {len(message.raw_input_contents)} entries for "
                f"{len(message.inputs)} inputs"
            )
        return message

    return decode


def _refusing(behavior: Callable[..., Any]) -> Callable[..., Any]:
    async def call(request: Any, context: grpc.aio.ServicerContext) -> Any:
        if isinstance(request, Malformed):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, request.reason)
        return await behavior(request, context)

    return call


class _Wrapping:
    """The server as ``add_GRPCInferenceServiceServicer_to_server`` sees it."""

    def __init__(self, server: Any) -> None:
        self._server = server

    @staticmethod
    def _wrap(handlers: dict[str, Any]) -> dict[str, Any]:
        return {
            name: h._replace(
                request_deserializer=_lenient(h.request_deserializer),
                unary_unary=_refusing(h.unary_unary),
            )
            if h.unary_unary is not None and h.request_deserializer is not None
            else h
            for name, h in handlers.items()
        }

    def add_generic_rpc_handlers(self, handlers: Any) -> None:
        return None  # the registered handlers below serve every method

    def add_registered_method_handlers(self, service: str, handlers: dict[str, Any]) -> None:
        wrapped = self._wrap(handlers)
        self._server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(service, wrapped),)
        )
        self._server.add_registered_method_handlers(service, wrapped)


def add_inference_servicer(servicer: Any, server: Any) -> None:
    """KServe's ``GRPCInferenceService`` servicer on ``server``, malformed requests refused."""
    grpc_predict_v2_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(servicer, _Wrapping(server))
