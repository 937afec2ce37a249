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
from berth_predictor.model import OnnxPredictor
from berth_predictor.protocol import install_grpc, install_routes
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


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
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
    if not settings.enable_trace_logs:
        for name in ("kserve.trace", "uvicorn.access"):
            logging.getLogger(name).setLevel(logging.WARNING)
    install_rest_handler(model_server.app)
    model_server.app.add_middleware(
        LimitsMiddleware,
        guard=model.guard,
        max_request_bytes=settings.max_request_bytes,
        setting="BERTH_PREDICTOR_MAX_REQUEST_BYTES",
    )
    install_routes(model_server.app, model)
    install_grpc(model)
    server.start([model])
    return 0


if __name__ == "__main__":
    sys.exit(main())
