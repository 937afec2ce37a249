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
import yaml

from berth.kube.chart import MONITORING_API, key
from berth.kube.manifests import (
    MANIFEST_API_VERSIONS,
    MANIFESTS_DIR,
    OVERLAYS,
    check_manifests,
    json_patch,
    manifest_objects,
)
from tests.k8s.conftest import kustomize

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
        "CronJob",
    } <= kinds
    # The base needs no Prometheus Operator: its PodMonitors are a component.
    assert "Secret" not in kinds and "PodMonitor" not in kinds
    assert all(
        o["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "kustomize"
        for o in base
        if "labels" in o["metadata"] and o["kind"] != "Namespace"
    )


def test_prometheus_operator_component_adds_the_podmonitors(kubectl: str, tmp_path: Path) -> None:
    """base + components/prometheus-operator, built by kustomize, equals the chart's default
    render for a cluster that serves monitoring.coreos.com/v1; so does the standard overlay
    with it (the PodMonitors scrape either mode)."""
    copy = Path(shutil.copytree(MANIFESTS_DIR, tmp_path / "manifests"))
    for overlay, scenario in (("base", "default"), ("overlays/standard", "standard")):
        folder = copy / "check" / overlay.replace("/", "-")
        folder.mkdir(parents=True)
        kustomization = {
            "resources": [f"../../{overlay}"],
            "components": ["../../components/prometheus-operator"],
        }
        (folder / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
        built = {key(o): o for o in kustomize(kubectl, folder)}
        apis = (*MANIFEST_API_VERSIONS, MONITORING_API)
        helm = {key(o): o for o in manifest_objects(scenario, api_versions=apis)}
        assert built == helm, overlay
        assert sum(k[1] == "PodMonitor" for k in built) == 2


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
    canary = isvcs("canary-standard")
    assert set(canary) == {"driver-ranking", "driver-ranking-canary-v2"}
    assert "canary" not in canary["driver-ranking"]["spec"]
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
        {"op": "add", "path": "/y", "value": {"a/b": 2}},
        {"op": "test", "path": "/env/1/name", "value": "B"},
        {"op": "replace", "path": "/env/1/value", "value": "3"},
    ]
    shorter = {"env": [{"name": "A", "value": "1"}], "x": 1}
    assert json_patch(old, shorter) == [  # a removed item is named too
        {"op": "test", "path": "/env/1/name", "value": "B"},
        {"op": "remove", "path": "/env/1"},
    ]


def test_berth_kube_imports_nothing_heavy() -> None:
    code = (
        "import sys, berth.kube, berth.kube.validate, berth.kube.__main__\n"
        "heavy = {'helm_python', 'torch', 'feast', 'kserve', 'kubernetes_validate', 'yaml'}\n"
        "print(sorted(heavy & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stderr
