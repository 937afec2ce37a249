"""Fixtures of the Kubernetes tests: the chart rendered per scenario, the kustomize builds, and
the external tools (kubectl, checkov, KServe's CRDs), each skipped with a reason when absent.

No cluster: the chart is rendered by the Helm SDK (helm-python-sdk), kustomize is the real one
inside ``kubectl kustomize``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from berth.kube.chart import (
    render_objects,
    scenario_api_versions,
    scenario_values,
    scenarios,
)
from berth.kube.manifests import MANIFESTS_DIR, OVERLAYS, manifest_objects

ROOT = Path(__file__).resolve().parents[2]
KUBERNETES_VERSION = "1.32.0"
"""Kubernetes version the objects are validated against (kubernetes-validate's schemas); the
kubectl these tests use is v1.32 with kustomize v5.5."""
SCENARIOS = scenarios()
KUSTOMIZATIONS = ["base", *(f"overlays/{o}" for o in OVERLAYS)]
"""Folders ``kubectl kustomize`` builds (components are built through a kustomization)."""

Obj = dict[str, Any]


def _tool(env: str, *candidates: Path | str) -> str | None:
    """``$env`` (a path or a name on PATH; None when it does not resolve), else the first
    candidate that is an executable file (a path) or is on PATH (a name)."""
    if os.environ.get(env):
        return shutil.which(os.environ[env])
    for candidate in candidates:
        if isinstance(candidate, Path):
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return str(candidate)
        elif found := shutil.which(candidate):
            return found
    return None


@pytest.fixture(scope="session")
def kubectl() -> str:
    found = _tool("BERTH_KUBECTL", "kubectl", ROOT / ".tools" / "bin" / "kubectl")
    if not found:
        pytest.skip(
            "kubectl (with kustomize) not found: set BERTH_KUBECTL or run "
            "scripts/install-kubectl.sh"
        )
    return found


@pytest.fixture(scope="session")
def checkov() -> str:
    found = _tool("BERTH_CHECKOV", ROOT / ".venv-checkov" / "bin" / "checkov", "checkov")
    if not found:
        pytest.skip(
            "checkov not found: set BERTH_CHECKOV or create .venv-checkov "
            "(python -m venv .venv-checkov && .venv-checkov/bin/pip install checkov==3.3.30)"
        )
    return found


@pytest.fixture(scope="session")
def kserve_crds() -> Path:
    folder = Path(os.environ.get("BERTH_KSERVE_CRDS") or ROOT.parent / "shared" / "kserve")
    if not (folder / "serving.kserve.io_inferenceservices.yaml").is_file():
        pytest.skip(
            f"KServe CRD schemas not found in {folder} (set BERTH_KSERVE_CRDS to a folder with "
            "serving.kserve.io_inferenceservices.yaml)"
        )
    return folder


@pytest.fixture(scope="session")
def isvc_schema(kserve_crds: Path) -> dict[str, Any]:
    from berth.rollout.crd import isvc_schema

    return isvc_schema(kserve_crds)


@pytest.fixture(scope="session")
def rendered() -> dict[str, list[Obj]]:
    """Scenario -> every object the chart renders for ``ci/<scenario>-values.yaml``, hooks
    (the ``helm test`` pod) included."""
    return {
        s: render_objects(scenario_values(s), hooks=True, api_versions=scenario_api_versions(s))
        for s in SCENARIOS
    }


def kustomize(kubectl: str, folder: Path) -> list[Obj]:
    out = subprocess.run(
        [kubectl, "kustomize", str(folder)], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, f"kubectl kustomize {folder} failed:\n{out.stderr}"
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


@pytest.fixture(scope="session")
def kustomized(kubectl: str) -> dict[str, list[Obj]]:
    """``base`` and ``overlays/<name>`` -> the objects ``kubectl kustomize`` builds."""
    return {k: kustomize(kubectl, MANIFESTS_DIR / k) for k in KUSTOMIZATIONS}


@pytest.fixture(scope="session")
def overlay_renders() -> dict[str, list[Obj]]:
    """Overlay -> the Helm render it must equal (its scenario plus the manifests' values)."""
    return {o: manifest_objects(s) for o, s in OVERLAYS.items()}
