"""The structure's own checks run with the tests (issue 16): the import rules, as the
``import-linter`` contracts in ``pyproject.toml`` (the containers never import each other, the
core never imports a container, no import cycles), and pylint's duplicate-code check (R0801)
over the product and the benchmarks, with the settings in ``pyproject.toml``."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
DUPLICATE_CODE_PATHS = ["berth", "predictors", "transformers", "benchmarks"]


def _run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=600)


def test_import_contracts_are_kept() -> None:
    lint_imports = BIN / "lint-imports"
    if not lint_imports.exists():
        pytest.skip("import-linter is not installed in this environment (the dev extra has it)")
    result = _run(str(lint_imports), "--no-cache", "--no-logo")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout, result.stdout


def test_import_contracts_catch_a_container_importing_the_other(tmp_path: Path) -> None:
    """The contracts are live: a copy of the packages where the predictor imports the
    transformer breaks "the containers never import each other"."""
    lint_imports = BIN / "lint-imports"
    if not lint_imports.exists():
        pytest.skip("import-linter is not installed in this environment (the dev extra has it)")
    for package in ("berth", "predictors", "transformers", "benchmarks"):
        shutil.copytree(
            ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    (tmp_path / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text())
    leak = tmp_path / "predictors" / "berth_predictor" / "leak.py"
    leak.write_text("import berth_transformer.settings\n")
    path = ":".join(str(tmp_path / p) for p in ("", "predictors", "transformers"))
    result = subprocess.run(
        [str(lint_imports), "--no-cache", "--no-logo"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        env={"PATH": str(BIN), "PYTHONPATH": path},
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "The containers never import each other BROKEN" in result.stdout, result.stdout
    assert "berth_predictor.leak -> berth_transformer.settings" in result.stdout, result.stdout


@pytest.mark.slow
def test_no_duplicate_code() -> None:
    result = _run(sys.executable, "-m", "pylint", *DUPLICATE_CODE_PATHS)
    assert result.returncode == 0 and "R0801" not in result.stdout, result.stdout + result.stderr


def test_duplicate_code_check_finds_a_copied_function(tmp_path: Path) -> None:
    """The settings in pyproject.toml report a function body copied into another module."""
    body = "".join(f"    v{i} = v{i - 1} * {i} + x\n" for i in range(1, 9))
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for name in ("a", "b"):
        (package / f"{name}.py").write_text(f"def {name}(x):\n    v0 = x\n{body}    return v8\n")
    result = _run(
        sys.executable,
        "-m",
        "pylint",
        f"--rcfile={ROOT / 'pyproject.toml'}",
        str(package),
        cwd=tmp_path,
    )
    assert "R0801" in result.stdout, result.stdout + result.stderr
