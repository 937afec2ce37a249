"""The `berth` command line as a user meets it (issue 13): --version, help with defaults and
examples everywhere, one-line errors, no surprise builds, Feast's apply output in a log."""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from berth.cli import build_parser
from berth.stack import free_port

BERTH = [sys.executable, "-m", "berth.cli"]


def run(
    *args: str, cwd: Path | None = None, timeout: int = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*BERTH, *args], capture_output=True, text=True, timeout=timeout, cwd=cwd)


def commands(
    parser: argparse.ArgumentParser, name: str = "berth"
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                yield from commands(sub, f"{name} {sub_name}")


def test_berth_version() -> None:
    from importlib.metadata import version

    done = run("--version")
    assert done.returncode == 0 and done.stdout.strip() == f"berth {version('berth')}"


def test_build_takes_model_version_and_keeps_the_old_spelling() -> None:
    parser = build_parser()
    for flag in ("--model-version", "--version"):
        assert parser.parse_args(["build", flag, "v9"]).version == "v9"


def test_every_help_has_examples_and_every_option_says_what_it_does_and_its_default() -> None:
    """Found: no defaults in --help, `--feature-service` without help, `--seed` said "data
    size: seed", rollout analyze's exit codes only in the docs."""
    for name, parser in commands(build_parser()):
        text = parser.format_help()
        assert "examples:" in text, name
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                continue
            assert action.help, f"{name} {action.option_strings or action.dest}: no help"
            takes_value = action.option_strings and action.nargs != 0
            if takes_value and action.default not in (None, argparse.SUPPRESS):
                assert "default" in (action.help or "") or f"(default: {action.default})" in text, (
                    name,
                    action.option_strings,
                )
    assert "data size" not in build_parser().format_help()
    analyze = dict(commands(build_parser()))["berth rollout analyze"].format_help()
    assert "0 promote, 3 hold, 4 roll back" in analyze
    seed = run("build", "--help").stdout
    assert "--seed SEED" in seed and "random seed of the generated data (default: 7)" in seed


def test_verify_on_a_file_is_a_one_line_error(tmp_path: Path) -> None:
    """Found: `berth verify README.md` ended in a raw NotADirectoryError traceback."""
    (tmp_path / "README.md").write_text("# not an artifact\n")
    done = run("verify", str(tmp_path / "README.md"))
    assert done.returncode == 1
    assert done.stderr.strip().count("\n") == 0, done.stderr
    assert "is a file, not an artifact directory" in done.stderr
    assert "Traceback" not in done.stderr


def test_up_does_not_build_into_a_mistyped_artifact_path(tmp_path: Path) -> None:
    """Found: `berth up --artifact <typo>` silently trained a model into that path (~40 s, plus
    `<typo>.build/`). Now only with --build (or for the default artifact)."""
    typo = tmp_path / "artifacts" / "driver-rankin"
    ports = ["--port", str(free_port()), "--grpc-port", str(free_port())]
    done = run("up", "--artifact", str(typo), "--online-store", "sqlite", *ports, cwd=tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "--build" in done.stderr and "Traceback" not in done.stderr
    assert not typo.exists() and not typo.with_name("driver-rankin.build").exists()


def test_feast_apply_output_is_one_progress_line_with_the_text_in_a_log(tmp_path: Path) -> None:
    """Found: Feast's apply dumped ~117 lines of registry diff into `berth build`'s progress."""
    from berth.featurerepo import copy_repo

    repo = tmp_path / "repo"
    copy_repo(repo)
    out = tmp_path / "artifact"
    small = ["--drivers", "20", "--customers", "40", "--days", "2", "--rides", "800"]
    done = run(
        "build",
        "--repo",
        str(repo),
        "--output",
        str(out),
        "--step",
        "data",
        "--step",
        "dataset",
        "--no-track",
        *small,
        cwd=tmp_path,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    assert len(lines) == 5, done.stdout  # two per step, one at the end
    log = out.with_name("artifact.build") / "feast-apply.log"
    assert str(log) in done.stdout
    assert log.read_text().strip(), "the full apply output is in the log"
