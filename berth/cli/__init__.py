"""The ``berth`` command line. Heavy modules (torch, feast) are imported by the commands."""

from __future__ import annotations

import argparse
import sys

from berth.cli import build, demo, sign, up, verify
from berth.cli.helptext import finish, version_text
from berth.errors import BerthError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="berth", description=__doc__)
    parser.add_argument("--version", action="version", version=version_text())
    sub = parser.add_subparsers(dest="command", required=True)
    for command in (build, verify, sign, up, demo):
        command.add_command(sub)
    from berth.rollout.cli import add_rollout_commands

    add_rollout_commands(sub)
    from berth.drift_report import add_drift_command

    add_drift_command(sub)
    from berth.batch.cli import add_batch_command

    add_batch_command(sub)
    finish(parser, "berth")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except BerthError as exc:
        print(f"berth {args.command}: {exc}", file=sys.stderr)
        return 1
