"""``python -m berth_predictor --model_name NAME --model_dir DIR --http_port P --grpc_port G``.

KServe's runtime flags (never re-declared); Berth's settings from ``BERTH_PREDICTOR_*``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from kserve import model_server

from berth.errors import BerthError
from berth.observability import configure_logging, get_logger
from berth.serving.drain import DrainingModelServer
from berth.serving.errors import install_rest_handler
from berth.serving.guard import LimitsMiddleware
from berth_predictor.grpc_service import install_grpc
from berth_predictor.model import OnnxPredictor
from berth_predictor.rest import install_routes
from berth_predictor.settings import PredictorSettings

log = get_logger("berth_predictor")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m berth_predictor",
        description="Berth predictor: a Berth artifact in ONNX Runtime behind KServe.",
        parents=[model_server.parser],
    )
    parser.add_argument(
        "--model_dir", default="/mnt/models", help="artifact directory (KServe storageUri)"
    )
    parser.set_defaults(enable_latency_logging=False)
    return parser


class _PerRequestLines(logging.Filter):
    """KServe's gRPC interceptor logs a line per call at INFO ("grpc method: ...")."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("grpc method:")


def quiet_per_request_logs() -> None:
    """KServe's and uvicorn's line per request off (BERTH_PREDICTOR_ENABLE_TRACE_LOGS)."""
    for name in ("kserve.trace", "uvicorn.access"):
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.getLogger("kserve").addFilter(_PerRequestLines())


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = PredictorSettings()
    configure_logging("predictor", settings.log_level)
    if args.workers != 1:
        log.error(
            "refusing to start: --workers must be 1. KServe pickles the model into spawned "
            "workers (an ONNX Runtime session does not pickle) and Prometheus metrics would "
            "split per worker; scale with replicas, and ORT threads with "
            "BERTH_PREDICTOR_INTRA_OP_THREADS."
        )
        return 2
    model = OnnxPredictor(args.model_name, Path(args.model_dir), settings)
    try:
        model.load()
    except BerthError as exc:
        log.error(
            "refusing to start: artifact failed verification",
            error=exc.message,
            file=exc.details.get("file"),
        )
        return 1
    serve(model, args, settings)
    return 0


def serve(model: OnnxPredictor, args: argparse.Namespace, settings: PredictorSettings) -> None:
    """KServe's ModelServer with Berth's drain, limits, routes and servicer; blocks."""
    # KServe's gRPC server reads its options from its own parse of argv: cap them there.
    model_server.args.grpc_max_receive_message_length = min(
        args.grpc_max_receive_message_length, settings.max_request_bytes
    )
    server = DrainingModelServer(
        model.guard,
        grace_s=settings.shutdown_grace_s,
        delay_s=settings.shutdown_delay_s,
        http_port=args.http_port,
        grpc_port=args.grpc_port,
        workers=1,
        enable_grpc=args.enable_grpc,
        enable_latency_logging=settings.enable_trace_logs,
    )
    configure_logging("predictor", settings.log_level)  # KServe configured its own
    logging.captureWarnings(True)  # library warnings as JSON log lines too
    if not settings.enable_trace_logs:
        quiet_per_request_logs()
    app = model_server.app  # routes and handlers before KServe adds its own at start
    install_rest_handler(app)
    app.add_middleware(
        LimitsMiddleware,
        guard=model.guard,
        max_request_bytes=settings.max_request_bytes,
        setting="BERTH_PREDICTOR_MAX_REQUEST_BYTES",
    )
    install_routes(app, model)
    install_grpc(model)
    server.start([model])


if __name__ == "__main__":
    sys.exit(main())
