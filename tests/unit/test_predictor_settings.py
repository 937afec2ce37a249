"""Predictor settings and the package's import hygiene."""

from __future__ import annotations

import ast
import inspect
import subprocess
import sys

import pytest
from pydantic import ValidationError

from berth_predictor.settings import PredictorSettings


def test_env_prefix_and_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BERTH_PREDICTOR_GRAPH_OPTIMIZATION", "basic")
    monkeypatch.setenv("BERTH_PREDICTOR_BATCHING", "false")
    monkeypatch.setenv("BERTH_PREDICTOR_MAX_BATCH_WAIT_MS", "1.5")
    settings = PredictorSettings()
    assert settings.graph_optimization == "basic"
    assert settings.batching is False
    assert settings.max_batch_wait_ms == 1.5
    assert settings.enable_trace_logs is False


@pytest.mark.parametrize(
    ("name", "value"),
    [("GRAPH_OPTIMIZATION", "fast"), ("MAX_BATCH_ROWS", "0"), ("MAX_INFLIGHT", "0")],
)
def test_bad_values_are_refused(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(f"BERTH_PREDICTOR_{name}", value)
    with pytest.raises(ValidationError):
        PredictorSettings()


def test_every_field_has_a_docstring() -> None:
    tree = ast.parse(inspect.getsource(PredictorSettings))
    body = tree.body[0].body  # type: ignore[attr-defined]
    for i, node in enumerate(body):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            following = body[i + 1] if i + 1 < len(body) else None
            assert isinstance(following, ast.Expr) and isinstance(following.value, ast.Constant)
    assert set(PredictorSettings.model_fields) >= {
        "intra_op_threads",
        "graph_optimization",
        "batching",
        "max_batch_rows",
        "max_batch_wait_ms",
        "max_request_rows",
        "max_inflight",
        "log_level",
        "enable_trace_logs",
    }


def test_importing_the_predictor_leaves_torch_and_feast_out() -> None:
    code = (
        "import sys, importlib, pkgutil, berth_predictor\n"
        "for m in pkgutil.walk_packages(berth_predictor.__path__, 'berth_predictor.'):\n"
        "    importlib.import_module(m.name)\n"
        "print(sorted(n for n in ('torch', 'feast') if n in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, "--model_name", "x"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert out.stdout.strip() == "[]", out.stderr
