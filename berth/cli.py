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


def _verify(args: argparse.Namespace) -> int:
    from berth.artifact import verify_artifact
    from berth.registry import fetch, is_model_uri

    if not is_model_uri(args.artifact) and not Path(args.artifact).is_dir():
        what = "a file" if Path(args.artifact).exists() else "nothing"
        raise BerthError(f"{args.artifact} is {what}, not an artifact directory")
    if is_model_uri(args.artifact):
        if args.public_key:
            raise BerthError("--public-key takes an artifact directory, not a models:/ URI")
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


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Examples kept as written; every option's default shown (unless unset or already said)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        help_text = action.help or ""
        default = action.default
        unset = default is None or default is False or default == [] or default == "==SUPPRESS=="
        if action.option_strings and not unset and "default" not in help_text:
            help_text += " (default: %(default)s)"
        return help_text


# Shown under each command's --help.
EXAMPLES = {
    "berth": "berth demo\nberth up --port 8080\nberth build --output artifacts/driver-ranking",
    "build": "berth build\nberth build --output /tmp/model --model-version v7 "
    "--drivers 40 --customers 120\nberth build --step train --step export",
    "verify": "berth verify artifacts/driver-ranking\n"
    "berth verify artifacts/driver-ranking --public-key signing/public.pem\n"
    "berth verify models:/driver-ranking@champion",
    "sign": "berth sign artifacts/driver-ranking --key signing/private.pem",
    "batch-score": "berth batch-score --entities entities.parquet --output scores.parquet\n"
    "berth batch-score --entities e.parquet --output s.parquet --engine ray",
    "up": "berth up\nberth up --artifact /tmp/model --build --port 9080\n"
    "berth up --redis redis://127.0.0.1:6379 --canary /tmp/model-v2 --canary-percent 20",
    "demo": "berth demo\nberth demo --online-store sqlite --candidates 5",
    "drift": "berth drift --url http://127.0.0.1:8080\nberth drift --url http://HOST:8080 --fail",
    "rollout": "berth rollout status -n berth\nberth rollout canary -n berth --percent 10",
    "analyze": "berth rollout analyze -n berth --scrape http://10.0.0.7:8080/metrics\n"
    "berth rollout analyze -n berth --prometheus http://prometheus:9090 --apply\n"
    "exit codes: 0 promote, 3 hold, 4 roll back; 1 an error",
    "status": "berth rollout status -n berth -o json",
    "canary": "berth rollout canary -n berth --percent 10 --storage-uri s3://models/v2",
    "promote": "berth rollout promote -n berth --dry-run",
    "rollback": "berth rollout rollback -n berth",
    "shadow": "berth rollout shadow -n berth --enable --host shadow-predictor:8081\n"
    "berth rollout shadow -n berth --disable",
}


def _finish(parser: argparse.ArgumentParser, name: str) -> None:
    """The house formatter and examples on ``parser`` and every subcommand below it."""
    parser.formatter_class = HelpFormatter
    example = EXAMPLES.get(name)
    if example and not parser.epilog:
        parser.epilog = "examples:\n" + "\n".join(f"  {line}" for line in example.split("\n"))
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                _finish(sub, sub_name)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"berth {version('berth')}"
    except PackageNotFoundError:  # a source tree that is not installed
        return "berth (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="berth", description=__doc__)
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", required=True)

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
    build.set_defaults(func=_build)

    verify = sub.add_parser("verify", help="check every digest of an artifact")
    verify.add_argument("artifact", help="artifact directory, or models:/NAME/VERSION|@ALIAS")
    verify.add_argument(
        "--public-key", help="EC public key (PEM): also check model.sig (unsigned fails)"
    )
    verify.set_defaults(func=_verify)

    sign = sub.add_parser("sign", help="sign an artifact (model.sig, OpenSSF model-signing)")
    sign.add_argument("artifact", help="the artifact directory (model.sig is written into it)")
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
    _finish(parser, "berth")
    return parser


def add_data_arguments(parser: argparse.ArgumentParser, when: str = "") -> None:
    """``--drivers/--customers/--days/--rides``: the size of the generated data."""
    from berth.datagen import DataSpec

    what = {
        "drivers": "drivers",
        "customers": "customers",
        "days": "days of rides",
        "rides": "rides",
    }
    spec = DataSpec()
    for name, noun in what.items():
        parser.add_argument(
            f"--{name}",
            type=int,
            help=f"number of {noun} in the generated data{when} (default: {getattr(spec, name)})",
        )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except BerthError as exc:
        print(f"berth {args.command}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
