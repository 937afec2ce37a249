"""``python -m berth_predictor --model_name NAME --model_dir DIR --http_port P --grpc_port G``.

KServe's runtime flags (never re-declared); Berth's settings from ``BERTH_PREDICTOR_*``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fastapi import FastAPI
from kserve import model_server

from berth.errors import BerthError
from berth.observability import configure_logging, get_logger
from berth.serving.config import COMMON_REFUSED, ConfigError, load_settings, refuse, refuse_flags
from berth.serving.infer_routes import Front
from berth.serving.server import serve
from berth_predictor.data_plane import PredictorDataPlane
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


# KServe's transformer-side flags: the predictor calls nothing.
_NOT_A_TRANSFORMER = "the predictor calls no predictor; remove the flag"
REFUSED = {
    **COMMON_REFUSED,
    "workers": "must be 1: KServe pickles the model into spawned workers (an ONNX Runtime "
    "session does not pickle) and Prometheus metrics would split per worker; scale with "
    "replicas, and ORT threads with BERTH_PREDICTOR_INTRA_OP_THREADS",
    **{
        dest: _NOT_A_TRANSFORMER
        for dest in (
            "predictor_host",
            "protocol",
            "predictor_protocol",
            "predictor_use_ssl",
            "predictor_request_timeout_seconds",
            "predictor_request_retries",
            "enable_predictor_health_check",
        )
    },
}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        refuse_flags(parser, args, REFUSED)
        settings = load_settings(PredictorSettings)
    except ConfigError as exc:
        return refuse("predictor", exc)
    configure_logging("predictor", settings.log_level)
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
    serve(
        model,
        args,
        settings,
        component="predictor",
        trace_logs=settings.enable_trace_logs or args.enable_latency_logging,
        install=lambda app: _install(app, model),
    )
    return 0


def _install(app: FastAPI, model: OnnxPredictor) -> Front:
    """The predictor's own REST routes and gRPC servicer (V2 extensions and metadata), both
    adapters of one data plane."""
    plane = PredictorDataPlane(model)
    install_grpc(plane)
    return install_routes(app, plane)


if __name__ == "__main__":
    sys.exit(main())
