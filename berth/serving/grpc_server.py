"""The containers' gRPC server: KServe's inference servicer, standard health, opt-in reflection,
bound where the settings say, with TLS when KServe's ``--ssl_certfile``/``--ssl_keyfile`` are
given (KServe applies them to REST only and leaves gRPC in plain text).

KServe 0.21's ``GRPCServer.start`` binds ``[::]`` with no option and registers only the
inference service (kserve/python/kserve/kserve/protocol/grpc/server.py). Here:

- ``grpc.health.v1.Health`` (package ``grpcio-health-checking``) answers SERVING for the
  server (``""``) and ``inference.GRPCInferenceService`` while the model is ready and the
  server not draining, NOT_SERVING otherwise: a Kubernetes ``grpc:`` probe or a mesh health
  check reads readiness without the inference proto. ``Check`` reads the state when asked;
  ``Watch`` streams see changes within :data:`WATCH_PERIOD_S`.
- KServe's logging interceptor (a line per call) only with trace logs on
  (``--enable_latency_logging``); without them its line was dropped by a filter after being
  made, a few percent of a call's CPU.
- Server reflection (package ``grpcio-reflection``) when ``BERTH_<ROLE>_GRPC_REFLECTION`` is
  true, so ``grpcurl`` works without the ``.proto``; off by default in the containers (it
  describes the whole API to anyone who can reach the port), on in ``berth up``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio
from grpc_reflection.v1alpha import reflection
from kserve.protocol.grpc import grpc_predict_v2_pb2
from kserve.protocol.grpc.interceptors import LoggingInterceptor
from kserve.protocol.grpc.server import GRPCServer

from berth.observability import get_logger
from berth.serving import grpc_decode
from berth.serving import kserve_compat as compat
from berth.serving.client_errors import QuietInterceptor

log = get_logger(__name__)

INFERENCE_SERVICE = grpc_predict_v2_pb2.DESCRIPTOR.services_by_name["GRPCInferenceService"]
HEALTH_SERVICE = health_pb2.DESCRIPTOR.services_by_name["Health"]
WATCH_PERIOD_S = 0.5
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class ReadinessHealth(health_aio.HealthServicer):  # type: ignore[misc]
    """``grpc.health.v1.Health`` whose status is ``ready()`` at the time of the call."""

    def __init__(self, ready: Callable[[], bool]) -> None:
        super().__init__()
        self.ready = ready
        self.services = ("", INFERENCE_SERVICE.full_name)

    async def refresh(self) -> None:
        status = SERVING if self.ready() else NOT_SERVING
        for service in self.services:
            await self.set(service, status)

    async def Check(self, request: health_pb2.HealthCheckRequest, context: Any) -> Any:
        await self.refresh()
        return await super().Check(request, context)

    async def follow(self) -> None:
        """Keep ``Watch`` streams current (runs for the server's life)."""
        while True:
            await self.refresh()
            await asyncio.sleep(WATCH_PERIOD_S)


def grpc_address(host: str, port: int) -> str:
    """``host:port`` for grpc; every interface (``0.0.0.0``) is ``[::]`` as in KServe."""
    if host in ("0.0.0.0", "::"):
        return f"[::]:{port}"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class BerthGrpcServer(GRPCServer):  # type: ignore[misc]
    """KServe's gRPC server with health, optional reflection and a chosen bind address."""

    def __init__(
        self,
        *args: Any,
        host: str,
        ready: Callable[[], bool],
        reflection_on: bool,
        tls: tuple[str, str] | None = None,
        log_calls: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.log_calls = log_calls  # KServe's logging interceptor: an INFO line per call
        self.host = host
        self.tls = None if tls is None else [(Path(tls[1]).read_bytes(), Path(tls[0]).read_bytes())]
        self.health = ReadinessHealth(ready)
        self.reflection_on = reflection_on

    def interceptors(self) -> tuple[Any, ...]:
        """Errors to status codes; KServe's line per call only when asked for."""
        if self.log_calls:
            return (LoggingInterceptor(), QuietInterceptor())
        return (QuietInterceptor(),)

    async def start(self, max_workers: int) -> None:
        # The servicer by its module name: the containers point it at Berth's subclass.
        servicer = compat.new_inference_servicer(self)
        _, _, kwargs, port = compat.grpc_server_parts(self)
        server = aio.server(
            futures.ThreadPoolExecutor(max_workers=max_workers),
            interceptors=self.interceptors(),
            options=[
                ("grpc.max_send_message_length", kwargs.get("grpc_max_send_message_length")),
                ("grpc.max_receive_message_length", kwargs.get("grpc_max_receive_message_length")),
                # gRPC shares a port with any other SO_REUSEPORT listener by default: two
                # servers on one port would split the calls. A taken port fails the start.
                ("grpc.so_reuseport", 0),
            ],
        )
        compat.set_aio_server(self, server)  # GRPCServer.stop stops it
        grpc_decode.add_inference_servicer(servicer, server)  # malformed: INVALID_ARGUMENT
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        if self.reflection_on:
            names = (INFERENCE_SERVICE.full_name, HEALTH_SERVICE.full_name)
            reflection.enable_server_reflection((*names, reflection.SERVICE_NAME), server)
        address = grpc_address(self.host, port)
        if self.tls is None:
            server.add_insecure_port(address)
        else:  # KServe's --ssl_certfile/--ssl_keyfile: TLS on gRPC too, not only on REST
            server.add_secure_port(address, grpc.ssl_server_credentials(self.tls))
        await server.start()
        log.info(
            "gRPC server listening",
            address=address,
            tls=self.tls is not None,
            reflection=self.reflection_on,
        )
        follower = asyncio.get_running_loop().create_task(self.health.follow())
        try:
            await server.wait_for_termination()
        finally:
            follower.cancel()
