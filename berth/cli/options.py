"""Arguments several commands share: the generated data's size, and local mode's stack."""

from __future__ import annotations

import argparse
from pathlib import Path

from berth.artifact import DEFAULT_ARTIFACT
from berth.local import STATE_DIR, LocalStack

DATA_SIZES = ("drivers", "customers", "days", "rides")


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


def add_stack_arguments(parser: argparse.ArgumentParser) -> None:
    """What ``berth up`` and ``berth demo`` start: artifact, feature repo, online store,
    predictor protocol, canary and shadow predictors."""
    parser.add_argument(
        "--artifact",
        default=str(DEFAULT_ARTIFACT),
        help=f"artifact directory (default: {DEFAULT_ARTIFACT}, built when absent; another "
        "path is built only with --build)",
    )
    parser.add_argument("--repo", help="Feast repo (default: the project's feature_repo/)")
    store = parser.add_mutually_exclusive_group()
    store.add_argument(
        "--redis",
        metavar="URL",
        help="materialize into this Redis "
        "(redis://host:port[/db]); default: a private redis-server",
    )
    store.add_argument(
        "--redis-cluster",
        metavar="NODES",
        help="materialize into this Redis Cluster, Feast's connection string "
        "(host:port[,host:port...][,username=..,password=..,ssl=true,ssl_ca_certs=..])",
    )
    store.add_argument("--online-store", choices=["sqlite"], help="use Feast's SQLite store")
    parser.add_argument(
        "--predictor-protocol",
        choices=["grpc-v2", "v2"],
        default="v2",
        help="transformer -> predictor protocol",
    )
    parser.add_argument("--logs", default=str(STATE_DIR / "logs"), help="child process logs")
    parser.add_argument(
        "--canary", metavar="DIR", help="artifact of a canary predictor (same FeatureService)"
    )
    parser.add_argument(
        "--canary-percent",
        type=float,
        default=10.0,
        metavar="N",
        help="share of customers (0..100) routed to --canary (sticky per customer)",
    )
    parser.add_argument(
        "--shadow", metavar="DIR", help="artifact of a shadow predictor (gets copies)"
    )
    parser.add_argument(
        "--build",
        action="store_true",
        help="build the artifact when --artifact has none (always done for the default path)",
    )
    add_data_arguments(parser, " (when it is built)")


def stack_from_args(args: argparse.Namespace, port: int, grpc_port: int) -> LocalStack:
    """The :class:`LocalStack` that ``berth up``/``berth demo`` ARGS describe."""
    from berth.featurerepo import REPO_DIR

    data_args: list[str] = []
    for name in DATA_SIZES:
        if getattr(args, name) is not None:
            data_args += [f"--{name}", str(getattr(args, name))]
    return LocalStack(
        artifact=Path(args.artifact).resolve(),
        repo=Path(args.repo or REPO_DIR).resolve(),
        port=port,
        grpc_port=grpc_port,
        redis_url=args.redis,
        redis_cluster=args.redis_cluster,
        online_store=args.online_store,
        predictor_protocol=args.predictor_protocol,
        data_args=data_args,
        canary=Path(args.canary).resolve() if args.canary else None,
        canary_percent=args.canary_percent,
        shadow=Path(args.shadow).resolve() if args.shadow else None,
        build=args.build,
        logs=Path(args.logs).resolve(),
    )
