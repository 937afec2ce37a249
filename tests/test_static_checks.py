"""The code's own checks run with the tests: ruff (lint and format) and mypy --strict.

Both use the pinned versions from ``constraints.txt`` in ``.venv``, with the settings in
``pyproject.toml``; a failure prints what they found.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TYPED = ["berth", "transformers/berth_transformer", "predictors/berth_predictor"]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_ruff_lint_and_format_are_clean() -> None:
    ruff = BIN / "ruff"
    if not ruff.exists():
        pytest.skip("ruff is not installed in this environment (the dev extra installs it)")
    lint = _run(str(ruff), "check", ".")
    assert lint.returncode == 0, lint.stdout + lint.stderr
    fmt = _run(str(ruff), "format", "--check", ".")
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr


@pytest.mark.slow
def test_mypy_strict_is_clean_on_the_serving_and_build_code() -> None:
    result = _run(sys.executable, "-m", "mypy", *TYPED)
    assert result.returncode == 0, result.stdout + result.stderr
