"""Start one container's KServe ModelServer the Berth way; shared by predictor and transformer.

Both containers get the same plumbing: the gRPC message cap from the request-size setting, the
draining server (SIGTERM drains through the in-flight guard), JSON logs, KServe's and uvicorn's
per-request lines off unless asked for, Berth's error mapping and the ASGI limits middleware,
uvloop as the event loop (KServe 0.21 starts its loop with ``asyncio.run``, so its own
``--event_loop auto`` never reaches it), and a frozen heap: the objects that kserve, feast,
pandas and protobuf leave behind at import are no longer walked by every full collection.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI
from kserve import model_server
from kserve.constants.constants import FASTAPI_APP_IMPORT_STRING
from kserve.protocol.rest.server import RESTServer

from berth.observability import configure_logging, get_logger
from berth.serving import http_limits
from berth.serving import kserve_compat as compat
from berth.serving.client_errors import install_quiet_handlers
from berth.serving.drain import DrainingModelServer
from berth.serving.errors import install_rest_handler
from berth.serving.grpc_server import BerthGrpcServer
from berth.serving.guard import ASGIApp, Guard, LimitsMiddleware
from berth.serving.infer_routes import Front
from berth.serving.metrics import tidy_registry
from berth.serving.repository import ServiceRepository, repository_extension
from berth.serving.settings import ServingSettings

log = get_logger(__name__)


def quiet_per_request_logs() -> None:
    """KServe's timing trace and uvicorn's access line off (KServe's gRPC line per call comes
    from its logging interceptor, which the gRPC server has only with trace logs on)."""
    logging.getLogger("kserve.trace").setLevel(logging.WARNING)
    # No handler on the way up: uvicorn's protocol then skips the line's work (it formats the
    # client address and path before the logger drops the line), as with uvicorn --no-access-log.
    access = logging.getLogger("uvicorn.access")
    access.handlers, access.propagate = [], False


def use_uvloop(choice: str) -> bool:
    """uvloop for the server's loop when KServe's ``--event_loop`` allows it and it is there."""
    if choice not in ("auto", "uvloop"):
        return False
    try:
        import uvloop
    except ImportError:
        if choice == "uvloop":
            raise
        return False
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    # KServe calls asyncio.get_event_loop() before its asyncio.run(): give it a loop.
    asyncio.set_event_loop(asyncio.new_event_loop())
    return True


class BerthRESTServer(RESTServer):  # type: ignore[misc]
    """KServe's REST server, with a missing model answered at INFO (:mod:`client_errors`)."""

    def _add_exception_handlers(self, app: FastAPI) -> None:  # compat.REST_HANDLERS_HOOK
        super()._add_exception_handlers(app)
        install_quiet_handlers(app)


class BerthModelServer(DrainingModelServer):
    """The draining server, bound to ``settings.listen_host``, with the repository extension
    as the settings say and gRPC health/reflection (:mod:`berth.serving.grpc_server`).

    KServe 0.21's ``ModelServer.start`` builds uvicorn on ``0.0.0.0`` and gRPC on ``[::]``
    with no option (kserve/python/kserve/kserve/model_server.py); this ``start`` builds the
    same two servers (one worker) where Berth says."""

    def __init__(
        self,
        model: Any,
        settings: ServingSettings,
        setting_prefix: str,
        asgi_app: ASGIApp,
        **kwargs: Any,
    ) -> None:
        super().__init__(registered_models=ServiceRepository(), **kwargs)
        self.model = model
        self.asgi_app = asgi_app  # what uvicorn serves: KServe's app behind Berth's front
        self.host = settings.listen_host
        self.reflection = settings.grpc_reflection
        self.model_repository_extension = repository_extension(
            self.registered_models,
            settings.model_repository,
            f"{setting_prefix}MODEL_REPOSITORY",
        )

    def ready(self) -> bool:
        return bool(self.model.ready) and not self.guard.draining

    def start(self, models: list[Any]) -> None:
        compat.register_models(self, models)
        rest = BerthRESTServer(
            FASTAPI_APP_IMPORT_STRING,
            self.dataplane,
            self.model_repository_extension,
            self.http_port,
            access_log_format=self.access_log_format,
            grace_period=self.grace_period,
            event_loop=self.event_loop,
            timeout_keep_alive=self.timeout_keep_alive,
            ssl_certfile=self.ssl_certfile,
            ssl_keyfile=self.ssl_keyfile,
        )
        rest.config.host = self.host
        rest.config.app = self.asgi_app  # uvicorn takes an app object as well as a string
        compat.set_servers(self, rest=rest)
        self.servers.append(rest.start())
        if self.enable_grpc:
            grpc = BerthGrpcServer(
                self.grpc_port,
                self.dataplane,
                self.model_repository_extension,
                kwargs=compat.server_args(),
                grace_period=self.grace_period,
                host=self.host,
                ready=self.ready,
                reflection_on=self.reflection,
                log_calls=bool(self.enable_latency_logging),
                tls=(self.ssl_certfile, self.ssl_keyfile)
                if self.ssl_certfile and self.ssl_keyfile
                else None,
            )
            compat.set_servers(self, grpc=grpc)
            self.servers.append(grpc.start(self.max_threads))
        self.setup_event_loop()
        log.info("listening", host=self.host, http_port=self.http_port, grpc_port=self.grpc_port)
        asyncio.run(self.serve_until_drained())


def serve(
    model: Any,
    args: argparse.Namespace,
    settings: ServingSettings,
    *,
    component: str,
    trace_logs: bool,
    install: Callable[[FastAPI], Front] | None = None,
    on_idle: Callable[[float], Awaitable[None]] | None = None,
) -> None:
    """Serve ``model`` (with its in-flight ``model.guard``) until SIGTERM has drained it;
    blocks."""
    guard: Guard = model.guard
    # KServe's gRPC server reads its options from its own parse of argv: cap them there.
    compat.set_server_arg(
        "grpc_max_receive_message_length",
        min(args.grpc_max_receive_message_length, settings.max_request_bytes),
    )
    prefix = f"BERTH_{component.upper()}_"
    app = model_server.app  # Berth's routes and handlers before KServe adds its own at start
    install_rest_handler(app)
    front = install(app) if install is not None else Front()
    served = front.app(
        app,
        limits=lambda inner: LimitsMiddleware(
            inner,
            guard=guard,
            max_request_bytes=settings.max_request_bytes,
            setting=f"{prefix}MAX_REQUEST_BYTES",
        ),
    )
    server = BerthModelServer(
        model,
        settings,
        prefix,
        served,
        guard=guard,
        grace_s=settings.shutdown_grace_s,
        delay_s=settings.shutdown_delay_s,
        on_idle=on_idle,
        http_protocol=http_limits.protocol_class(
            settings.max_header_bytes, settings.max_headers, settings.header_timeout_s
        ),
        http_port=args.http_port,
        grpc_port=args.grpc_port,
        workers=1,
        enable_grpc=args.enable_grpc,
        enable_latency_logging=trace_logs,
    )
    configure_logging(component, settings.log_level)  # KServe configured its own
    logging.captureWarnings(True)  # library warnings as JSON log lines too
    if not trace_logs:
        quiet_per_request_logs()
    tidy_registry()
    uvloop = use_uvloop(args.event_loop)
    gc.collect()
    gc.freeze()
    log.info("serving", component=component, uvloop=uvloop)
    server.start([model])
