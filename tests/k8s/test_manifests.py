"""manifests/ is rendered from the chart (one source of truth): the files on disk match a fresh
render, and each overlay built by the real kustomize (``kubectl kustomize``) equals the Helm
render of its scenario, object for object."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from berth.kube.chart import key
from berth.kube.manifests import MANIFESTS_DIR, OVERLAYS, check_manifests, json_patch

pytestmark = pytest.mark.k8s

ROOT = Path(__file__).resolve().parents[2]
Obj = dict[str, Any]


def test_manifests_match_the_chart() -> None:
    drift = check_manifests()
    assert not drift, "manifests/ drifted from helm/berth; run `python -m berth.kube "
    "render-manifests`:\n" + drift.report()


def test_every_overlay_equals_its_helm_render(
    kustomized: dict[str, list[Obj]], overlay_renders: dict[str, list[Obj]]
) -> None:
    assert set(OVERLAYS) == {"knative", "standard", "canary", "canary-standard", "shadow", "dev"}
    for overlay, expected in overlay_renders.items():
        built = {key(o): o for o in kustomized[f"overlays/{overlay}"]}
        helm = {key(o): o for o in expected}
        assert built.keys() == helm.keys(), overlay
        different = [k for k in helm if built[k] != helm[k]]
        assert different == [], f"{overlay}: {different}"


def test_base_is_the_default_render_with_its_namespace(kustomized: dict[str, list[Obj]]) -> None:
    base = kustomized["base"]
    namespaces = [o for o in base if o["kind"] == "Namespace"]
    assert [n["metadata"]["name"] for n in namespaces] == ["berth"]
    labels = namespaces[0]["metadata"]["labels"]
    for mode in ("enforce", "audit", "warn"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"
    kinds = {o["kind"] for o in base}
    assert {
        "Namespace",
        "ServiceAccount",
        "ConfigMap",
        "InferenceService",
        "PodDisruptionBudget",
        "NetworkPolicy",
        "PodMonitor",
        "CronJob",
    } <= kinds
    assert "Secret" not in kinds


def test_overlays_carry_their_difference(kustomized: dict[str, list[Obj]]) -> None:
    def isvcs(name: str) -> dict[str, Obj]:
        found = kustomized[f"overlays/{name}"]
        return {o["metadata"]["name"]: o for o in found if o["kind"] == "InferenceService"}

    assert (
        isvcs("knative")["driver-ranking"]["metadata"]["annotations"][
            "serving.kserve.io/deploymentMode"
        ]
        == "Knative"
    )
    standard = isvcs("standard")["driver-ranking"]
    assert standard["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Standard"
    assert isvcs("canary")["driver-ranking"]["spec"]["predictor"]["canaryTrafficPercent"] == 20
    canary = isvcs("canary-standard")["driver-ranking"]["spec"]["canary"]
    assert canary[0]["trafficPercent"] == 10 and canary[0]["predictor"]["name"] == "canary-v2"
    assert set(isvcs("shadow")) == {"driver-ranking", "driver-ranking-shadow"}
    dev = {o["kind"] for o in kustomized["overlays/dev"]}
    assert {"Deployment", "Service"} <= dev and "PodDisruptionBudget" not in dev


def test_render_command_check_flag(tmp_path: Path) -> None:
    def check(out: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "berth.kube", "render-manifests", "--check", "--out", str(out)],
            capture_output=True,
            text=True,
            cwd=ROOT,
            check=False,
        )

    ok = check(MANIFESTS_DIR)
    assert ok.returncode == 0, ok.stderr
    copy = Path(shutil.copytree(MANIFESTS_DIR, tmp_path / "manifests"))
    isvc = copy / "base" / "inferenceservice-driver-ranking.yaml"
    isvc.write_text(isvc.read_text().replace("maxReplicas: 4", "maxReplicas: 5"))
    (copy / "overlays" / "dev" / "leftover.yaml").write_text("kind: ConfigMap\n")
    drifted = check(copy)
    assert drifted.returncode == 1
    assert "differs: base/inferenceservice-driver-ranking.yaml" in drifted.stderr
    assert "stale (not rendered any more): overlays/dev/leftover.yaml" in drifted.stderr


def test_json_patch_names_list_items() -> None:
    old = {"env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}], "x": 1}
    new = {"env": [{"name": "A", "value": "1"}, {"name": "B", "value": "3"}], "y": {"a/b": 2}}
    assert json_patch(old, new) == [
        {"op": "remove", "path": "/x"},
        {"op": "test", "path": "/env/1/name", "value": "B"},
        {"op": "replace", "path": "/env/1/value", "value": "3"},
        {"op": "add", "path": "/y", "value": {"a/b": 2}},
    ]


def test_berth_kube_imports_nothing_heavy() -> None:
    code = (
        "import sys, berth.kube, berth.kube.validate, berth.kube.__main__\n"
        "heavy = {'helm_python', 'torch', 'feast', 'kserve', 'kubernetes_validate', 'yaml'}\n"
        "print(sorted(heavy & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stderr
