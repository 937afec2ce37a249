"""The ``berth`` command line. Heavy modules (torch, feast) are imported by the commands."""

from __future__ import annotations

import argparse
import sys
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
    )
    steps = tuple(args.step) if args.step else STEPS
    run_build(cfg, steps)
    return 0


def _verify(args: argparse.Namespace) -> int:
    from berth.artifact import verify_artifact

    if not Path(args.artifact).is_dir():
        what = "a file" if Path(args.artifact).exists() else "nothing"
        raise BerthError(f"{args.artifact} is {what}, not an artifact directory")
    meta = verify_artifact(Path(args.artifact))
    print(f"ok: {meta.name} {meta.version} ({len(meta.files) + 1} files verified)")
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
    "verify": "berth verify artifacts/driver-ranking",
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
    add_data_arguments(build)
    build.add_argument("--seed", type=int, help="random seed of the generated data (default: 7)")
    build.set_defaults(func=_build)

    verify = sub.add_parser("verify", help="check every digest of an artifact")
    verify.add_argument("artifact", help="the artifact directory")
    verify.set_defaults(func=_verify)
    from berth.local import add_local_commands

    add_local_commands(sub)
    from berth.rollout.cli import add_rollout_commands

    add_rollout_commands(sub)
    from berth.drift_report import add_drift_command

    add_drift_command(sub)
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
