"""What ``--help`` shows: the house formatter, each command's examples, ``--version``."""

from __future__ import annotations

import argparse


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


def finish(parser: argparse.ArgumentParser, name: str) -> None:
    """The house formatter and examples on ``parser`` and every subcommand below it."""
    parser.formatter_class = HelpFormatter
    example = EXAMPLES.get(name)
    if example and not parser.epilog:
        parser.epilog = "examples:\n" + "\n".join(f"  {line}" for line in example.split("\n"))
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                finish(sub, sub_name)


def version_text() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"berth {version('berth')}"
    except PackageNotFoundError:  # a source tree that is not installed
        return "berth (not installed)"
