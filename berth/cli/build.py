"""``berth build``: train -> ONNX -> int8 -> verified artifact."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from berth.artifact import DEFAULT_ARTIFACT
from berth.cli.options import add_data_arguments


def add_command(sub: Any) -> None:
    build = sub.add_parser("build", help="train -> ONNX -> int8 -> verified artifact")
    build.add_argument("--output", default=str(DEFAULT_ARTIFACT), help="artifact directory")
    build.add_argument("--repo", help="Feast repo (default: the project's feature_repo/)")
    build.add_argument(
        "--feature-service",
        default="driver_ranking_v1",
        help="the FeatureService whose features the model takes",
    )
    build.add_argument(
        "--model-version",
        "--version",
        dest="version",
        help="model version (default: <service suffix>-<sha8>); --version is the old spelling",
    )
    build.add_argument(
        "--quantization", choices=["static", "dynamic"], default="static", help="int8 method"
    )
    build.add_argument(
        "--step",
        action="append",
        choices=["data", "dataset", "train", "export", "quantize", "evaluate", "package"],
        help="run only this step (repeatable); steps share <output>.build/",
    )
    build.add_argument("--regenerate", action="store_true", help="regenerate the data")
    build.add_argument("--sign-key", help="EC private key (PEM): sign the artifact last")
    build.add_argument(
        "--no-track", action="store_true", help="do not log the build as an MLflow run"
    )
    build.add_argument("--register", metavar="NAME", help="register the artifact in MLflow")
    build.add_argument(
        "--storage-uri", help="with --register: where the artifact is published (s3://...)"
    )
    add_data_arguments(build)
    build.add_argument("--seed", type=int, help="random seed of the generated data (default: 7)")
    build.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from berth.featurerepo import REPO_DIR
    from berth.modelbuild.config import BuildConfig
    from berth.modelbuild.pipeline import STEPS, run_build

    data = {
        k: v
        for k, v in {
            "drivers": args.drivers,
            "customers": args.customers,
            "days": args.days,
            "rides": args.rides,
            "seed": args.seed,
        }.items()
        if v is not None
    }
    cfg = BuildConfig(
        repo=Path(args.repo or REPO_DIR).resolve(),
        output=Path(args.output).resolve(),
        feature_service=args.feature_service,
        version=args.version,
        quantization=args.quantization,
        regenerate=args.regenerate,
        data=data,
        sign_key=Path(args.sign_key).resolve() if args.sign_key else None,
        track=not args.no_track,
        register=args.register,
        storage_uri=args.storage_uri,
    )
    steps = tuple(args.step) if args.step else STEPS
    run_build(cfg, steps)
    return 0
