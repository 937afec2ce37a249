"""``python -m berth_transformer --model_name driver-ranking --predictor_host HOST:PORT
--predictor_protocol grpc-v2 --http_port P --grpc_port G``; the rest from ``BERTH_TRANSFORMER_*``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from kserve import model_server
from pydantic import ValidationError

from berth.errors import BerthError
from berth.observability import configure_logging, get_logger
from berth.serving.config import COMMON_REFUSED, ConfigError, load_settings, refuse, refuse_flags
from berth.serving.infer_routes import Front
from berth.serving.server import serve
from berth_transformer.data_plane import TransformerPlane
from berth_transformer.grpc_service import install_grpc
from berth_transformer.model import FeatureTransformer
from berth_transformer.rest import install_routes
from berth_transformer.settings import TransformerSettings

log = get_logger("berth_transformer")


def build_parser() -> argparse.ArgumentParser:
    """KServe's own flags (never re-declared), with Berth's defaults."""
    parser = argparse.ArgumentParser(
        prog="python -m berth_transformer",
        description="Berth transformer: Feast online features in front of the predictor. "
        "Berth's settings come from BERTH_TRANSFORMER_* environment variables.",
        parents=[model_server.parser],
    )
    # REST V2 to the predictor (measured: more rps, less CPU than gRPC); no per-request trace line
    # (about +35% rps here). The predictor
    # link's flags default to unset: given, they set the BERTH_TRANSFORMER_PREDICTOR_* field.
    parser.set_defaults(
        predictor_protocol="v2",
        enable_latency_logging=False,
        predictor_use_ssl=None,
        predictor_request_timeout_seconds=None,
        predictor_request_retries=None,
    )
    return parser


REFUSED = {
    **COMMON_REFUSED,
    "workers": "must be 1: KServe pickles the model; scale with replicas",
    "protocol": "deprecated by KServe and not read; use --predictor_protocol",
    "enable_predictor_health_check": "not supported: the transformer checks the predictor's "
    "contract at start and answers 503 per request while it is down; remove the flag",
}
# KServe flag -> (field it sets, value from the flag)
FLAG_FIELDS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "predictor_use_ssl": ("predictor_tls", bool),
    "predictor_request_timeout_seconds": ("predictor_timeout_ms", lambda s: int(s * 1000)),
    "predictor_request_retries": ("predictor_retries", int),
}


def configure(parser: argparse.ArgumentParser, args: argparse.Namespace) -> TransformerSettings:
    """The settings, with KServe's predictor flags folded in; a :class:`ConfigError` for
    anything that cannot be honoured."""
    if not args.predictor_host:
        raise ConfigError("--predictor_host", "required", "pass --predictor_host HOST:PORT")
    if args.predictor_protocol not in ("grpc-v2", "v2"):
        raise ConfigError(
            "--predictor_protocol", "the predictor speaks Open Inference V2", "use grpc-v2 or v2"
        )
    refuse_flags(parser, args, REFUSED)
    settings = load_settings(TransformerSettings)
    update = {}
    for dest, (field, convert) in FLAG_FIELDS.items():
        value = getattr(args, dest)
        if value is None:
            continue
        if field in settings.model_fields_set and getattr(settings, field) != convert(value):
            var = f"BERTH_TRANSFORMER_{field.upper()}"
            raise ConfigError(f"--{dest}", f"{var} says otherwise", "set one of the two")
        update[field] = convert(value)
        try:
            TransformerSettings.model_validate({**settings.model_dump(), **update})
        except ValidationError as exc:
            reason = f"invalid value {value!r}: {exc.errors()[0]['msg']}"
            raise ConfigError(f"--{dest}", reason, "give a valid value") from None
    settings = settings.model_copy(update=update)
    if settings.predictor_ca_bundle is not None:
        if not settings.predictor_tls:
            raise ConfigError(
                "BERTH_TRANSFORMER_PREDICTOR_CA_BUNDLE",
                "set but TLS to the predictor is off",
                "set BERTH_TRANSFORMER_PREDICTOR_TLS=true (or --predictor_use_ssl true)",
            )
        if not settings.predictor_ca_bundle.is_file():
            raise ConfigError(
                "BERTH_TRANSFORMER_PREDICTOR_CA_BUNDLE",
                f"no file at {settings.predictor_ca_bundle}",
                "point it at a PEM file of CA certificates",
            )
    return settings


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = configure(parser, args)
    except ConfigError as exc:
        return refuse("transformer", exc)
    configure_logging("transformer", settings.log_level)
    model = FeatureTransformer(
        args.model_name, settings, args.predictor_host, args.predictor_protocol
    )
    try:
        model.load()
    except BerthError as exc:
        log.error("refusing to start", error=exc.message, error_type=type(exc).__name__)
        return 1
    serve(
        model,
        args,
        settings,
        component="transformer",
        trace_logs=settings.log_level.upper() == "DEBUG" or args.enable_latency_logging,
        install=lambda app: _install(app, model),
        on_idle=model.finish_background,
    )
    return 0


def _install(app: FastAPI, model: FeatureTransformer) -> Front:
    """Berth's V2 REST routes and gRPC servicer, over one data plane, ahead of KServe's."""
    plane = TransformerPlane(model)
    install_grpc(plane)
    return install_routes(app, plane)


if __name__ == "__main__":
    sys.exit(main())
