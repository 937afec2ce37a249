"""``berth batch-score``: its arguments, and exit code 2 for bad input."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from berth.errors import ContractMismatchError, InvalidInputError

BAD_INPUT = 2


def add_batch_command(sub: Any) -> None:
    from berth.artifact import DEFAULT_ARTIFACT
    from berth.featurerepo import REPO_DIR, SQLITE_YAML

    batch = sub.add_parser(
        "batch-score", help="score an entity table with point-in-time features (offline)"
    )
    batch.add_argument("--entities", type=Path, required=True, help="entity rows (parquet)")
    batch.add_argument("--output", type=Path, required=True, help="scores (parquet)")
    batch.add_argument(
        "--artifact",
        default=str(DEFAULT_ARTIFACT),
        help="artifact directory or models:/NAME/VERSION|@ALIAS",
    )
    batch.add_argument(
        "--engine",
        choices=["local", "ray"],
        default="local",
        help="local: this process; ray: Ray Data (RAY_ADDRESS for a cluster)",
    )
    batch.add_argument("--workers", type=int, default=2, help="ray: scoring actors")
    batch.add_argument("--repo", type=Path, default=REPO_DIR, help="Feast repo")
    batch.add_argument(
        "--feature-store-yaml", type=Path, help=f"default: <repo>/{SQLITE_YAML} (offline store)"
    )
    batch.add_argument("--feature-service", help="default: the artifact's")
    batch.add_argument("--chunk-rows", type=int, default=100_000, help="rows joined at a time")
    batch.add_argument("--batch-rows", type=int, default=8192, help="rows per ONNX Runtime run")
    batch.add_argument(
        "--unknown-entities",
        choices=["reject", "fill"],
        default="reject",
        help="ids no source has: refuse (exit 2), or score with the training defaults",
    )
    batch.set_defaults(func=_batch_score)


def _artifact(value: str, scratch: Path) -> Path:
    """The artifact directory: as given, or a registered version downloaded to ``scratch``."""
    from berth.registry import fetch, is_model_uri

    if is_model_uri(value):
        return fetch(value, scratch).path
    return Path(value)


def _batch_score(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="berth-batch-") as scratch:
        return _run(args, _artifact(args.artifact, Path(scratch)))


def _run(args: argparse.Namespace, artifact: Path) -> int:
    from berth.batch.run import BatchOptions, batch_score, summary
    from berth.featurerepo import SQLITE_YAML

    opts = BatchOptions(
        entities=args.entities,
        output=args.output,
        artifact=artifact,
        repo=args.repo.resolve(),
        feature_store_yaml=(args.feature_store_yaml or args.repo / SQLITE_YAML).resolve(),
        feature_service=args.feature_service,
        engine=args.engine,
        workers=args.workers,
        chunk_rows=args.chunk_rows,
        batch_rows=args.batch_rows,
        unknown_entities=args.unknown_entities,
    )
    try:
        report = batch_score(opts)
    except (InvalidInputError, ContractMismatchError) as exc:
        print(f"berth batch-score: {exc}", file=sys.stderr)
        return BAD_INPUT
    print(json.dumps({"output": str(args.output), **summary(report)}))
    return 0
