"""The ``berth rollout`` argument parser, and that the command imports no heavy module."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from berth.rollout.cli import add_rollout_commands


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="berth")
    add_rollout_commands(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["rollout", *argv])


def test_defaults() -> None:
    args = parse("canary", "--percent", "20")
    assert (args.isvc, args.percent, args.via, args.dry_run) == (
        "driver-ranking",
        20,
        "auto",
        False,
    )
    args = parse("status", "other", "-n", "prod", "-o", "json")
    assert (args.isvc, args.namespace, args.output) == ("other", "prod", "json")


@pytest.mark.parametrize(
    "argv",
    [
        ["canary", "--percent", "101"],
        ["canary", "--percent", "-1"],
        ["canary", "--percent", "ten"],
        ["canary"],
        ["shadow"],
        ["shadow", "--enable", "--disable"],
        ["analyze", "--prometheus", "http://p", "--scrape", "http://x/metrics"],
        ["analyze", "--emit-template", "spinnaker"],
        ["analyze", "--watch", "--interval", "soon"],
        ["analyze", "--interval", "-5s"],
        ["status", "--deployment-mode", "modelmesh"],
    ],
)
def test_rejected(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        parse(*argv)
    assert exc.value.code == 2
    assert "error" in capsys.readouterr().err


def test_analyze_needs_a_source(capsys: pytest.CaptureFixture[str]) -> None:
    from berth.cli import main

    assert main(["rollout", "analyze"]) == 1
    assert "--prometheus URL or --scrape URL" in capsys.readouterr().err


def test_watch_arguments() -> None:
    args = parse("analyze", "--prometheus", "http://p", "--watch", "--interval", "2m")
    assert (args.watch, args.interval, args.looks, args.state) == (True, 120.0, 10, None)
    assert parse("analyze", "--scrape", "u", "--interval", "1.5").interval == 1.5


def test_import_is_light() -> None:
    code = (
        "import sys, berth.rollout.cli, berth.rollout.patches, berth.rollout.analyze_cli\n"
        "print(sorted(m for m in ('kubernetes', 'yaml', 'jsonschema', 'prometheus_client')"
        " if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stderr


def test_berth_cli_registers_rollout() -> None:
    from berth.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    if "rollout" not in sub.choices:
        pytest.skip("berth/cli.py does not call add_rollout_commands(sub) yet")
    args = parser.parse_args(["rollout", "rollback", "--dry-run"])
    assert args.func.__name__ == "_rollback"
