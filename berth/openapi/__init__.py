"""OpenAPI 3.1 descriptions of Berth's REST APIs (KServe's generated one does not describe
Berth's bodies): ``transformer.yaml`` and ``predictor.yaml``. Used by the fuzz tests
(schemathesis) and for clients."""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).parent


def spec_path(component: str) -> Path:
    """``transformer`` or ``predictor``."""
    return HERE / f"{component}.yaml"
