"""The ``berth`` command line. Heavy modules (torch, feast) are imported by the commands."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from berth.errors import BerthError

DEFAULT_ARTIFACT = Path("artifacts/driver-ranking")


def _build(args: argparse.Namespace) -> int:
    from berth.featurerepo import REPO_DIR
    from berth.modelbuild.pipeline import STEPS, BuildConfig, run_build

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


def _verify(args: argparse.Namespace) -> int:
    from berth.artifact import verify_artifact
    from berth.registry import fetch, is_model_uri

    if is_model_uri(args.artifact):
        if args.public_key:
            raise SystemExit(
                "berth verify: --public-key takes an artifact directory, not a models:/ URI"
            )
        with tempfile.TemporaryDirectory(prefix="berth-verify-") as tmp:
            found = fetch(args.artifact, Path(tmp))
        meta, where = found.metadata, f" at {found.storage_uri}"
    else:
        meta, where = verify_artifact(Path(args.artifact)), ""
    signed = ""
    if args.public_key:
        from berth.signing import verify_signature

        verify_signature(Path(args.artifact), Path(args.public_key))
        signed = f", signature verified with {args.public_key}"
    print(f"ok: {meta.name} {meta.version} ({len(meta.files) + 1} files verified){where}{signed}")
    return 0


def _sign(args: argparse.Namespace) -> int:
    from berth.signing import sign_artifact

    print(f"signed: {sign_artifact(Path(args.artifact), Path(args.key))}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="berth", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    build = sub.add_parser("build", help="train -> ONNX -> int8 -> verified artifact")
    build.add_argument("--output", default=str(DEFAULT_ARTIFACT), help="artifact directory")
    build.add_argument("--repo", help="Feast repo (default: the project's feature_repo/)")
    build.add_argument("--feature-service", default="driver_ranking_v1")
    build.add_argument("--version", help="model version (default: <service suffix>-<sha8>)")
    build.add_argument("--quantization", choices=["static", "dynamic"], default="static")
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
    for name in ("drivers", "customers", "days", "rides", "seed"):
        build.add_argument(f"--{name}", type=int, help=f"data size: {name}")
    build.set_defaults(func=_build)

    verify = sub.add_parser("verify", help="check every digest of an artifact")
    verify.add_argument("artifact", help="artifact directory, or models:/NAME/VERSION|@ALIAS")
    verify.add_argument(
        "--public-key", help="EC public key (PEM): also check model.sig (unsigned fails)"
    )
    verify.set_defaults(func=_verify)

    sign = sub.add_parser("sign", help="sign an artifact (model.sig, OpenSSF model-signing)")
    sign.add_argument("artifact")
    sign.add_argument("--key", required=True, help="EC private key (PEM)")
    sign.set_defaults(func=_sign)
    from berth.local import add_local_commands

    add_local_commands(sub)
    from berth.rollout.cli import add_rollout_commands

    add_rollout_commands(sub)
    from berth.drift_report import add_drift_command

    add_drift_command(sub)
    from berth.batch.cli import add_batch_command

    add_batch_command(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except BerthError as exc:
        print(f"berth {args.command}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
