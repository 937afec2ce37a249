"""``berth verify``: check every digest of an artifact (and its signature)."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

from berth.errors import BerthError


def add_command(sub: Any) -> None:
    verify = sub.add_parser("verify", help="check every digest of an artifact")
    verify.add_argument("artifact", help="artifact directory, or models:/NAME/VERSION|@ALIAS")
    verify.add_argument(
        "--public-key", help="EC public key (PEM): also check model.sig (unsigned fails)"
    )
    verify.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
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
