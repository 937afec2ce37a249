"""Layout and import rules that keep serving lean."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_container_folders_are_not_import_packages() -> None:
    for folder in ("transformers", "predictors"):
        assert not (ROOT / folder / "__init__.py").exists()
        assert not list((ROOT / folder).glob("*.py")), f"loose .py files in {folder}/"


def test_serving_imports_leave_torch_out() -> None:
    code = (
        "import sys, berth_predictor, berth_transformer, berth.artifact, berth.cli, "
        "berth.featurerepo\n"
        "import pkgutil, importlib\n"
        "for pkg in (berth_predictor, berth_transformer):\n"
        "    for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + '.'):\n"
        "        if not m.name.endswith('__main__'):\n"
        "            importlib.import_module(m.name)\n"
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stderr
