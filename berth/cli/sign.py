"""``berth sign``: write model.sig into an artifact (OpenSSF model-signing)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def add_command(sub: Any) -> None:
    sign = sub.add_parser("sign", help="sign an artifact (model.sig, OpenSSF model-signing)")
    sign.add_argument("artifact", help="the artifact directory (model.sig is written into it)")
    sign.add_argument("--key", required=True, help="EC private key (PEM)")
    sign.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from berth.signing import sign_artifact

    print(f"signed: {sign_artifact(Path(args.artifact), Path(args.key))}")
    return 0
