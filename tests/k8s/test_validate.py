"""Every object the chart renders and every kustomize build validates: core kinds with
kubernetes-validate (Kubernetes 1.32, strict: unknown fields fail), InferenceServices against
the openAPIV3Schema of KServe's CRD (../shared/kserve or $BERTH_KSERVE_CRDS; skipped with a
reason where absent). The counts of what was checked must be > 0: a validator that passes what
it does not know must not make the gate pass."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from berth.kube.validate import KUBERNETES_VERSION, validate

pytestmark = pytest.mark.k8s

Obj = dict[str, Any]
CORE = f"kubernetes-{KUBERNETES_VERSION.rpartition('.')[0]}"


def test_validating_against_kubernetes_1_32() -> None:
    assert CORE == "kubernetes-1.32"


def test_chart_core_kinds_validate(rendered: dict[str, list[Obj]]) -> None:
    for scenario, objects in rendered.items():
        report = validate(objects, None)
        assert report.problems == [], f"ci/{scenario}-values.yaml"
        assert report.checked[CORE] >= 8, scenario
        assert set(report.unchecked) <= {"InferenceService", "PodMonitor", "PrometheusRule"} | {
            "AuthorizationPolicy"
        }
        assert sum(report.checked.values()) + sum(report.unchecked.values()) == len(objects)


def test_chart_inference_services_validate(
    rendered: dict[str, list[Obj]], isvc_schema: Obj
) -> None:
    total = 0
    for scenario, objects in rendered.items():
        report = validate(objects, isvc_schema)
        assert report.problems == [], f"ci/{scenario}-values.yaml"
        assert "InferenceService" not in report.unchecked
        assert report.checked["kserve-crd"] >= 1, scenario
        total += report.checked["kserve-crd"]
    # One per scenario, plus driver-ranking-shadow and the transformer-level canaries
    # (driver-ranking-canary, driver-ranking-canary-v2 in canary-standard).
    assert total == len(rendered) + 3


def test_kustomize_builds_validate(kustomized: dict[str, list[Obj]]) -> None:
    for name, objects in kustomized.items():
        report = validate(objects, None)
        assert report.problems == [], name
        assert report.checked[CORE] >= 8, name
        assert set(report.unchecked) <= {"InferenceService", "PodMonitor"}, name


def test_kustomize_inference_services_validate(
    kustomized: dict[str, list[Obj]], isvc_schema: Obj
) -> None:
    for name, objects in kustomized.items():
        report = validate(objects, isvc_schema)
        assert report.problems == [], name
        assert report.checked["kserve-crd"] >= 1, name


def test_validators_reject_broken_objects(rendered: dict[str, list[Obj]], isvc_schema: Obj) -> None:
    """Controls: the same validators fail a wrong core object and a wrong InferenceService."""
    objects = rendered["default"]
    cronjob = copy.deepcopy(next(o for o in objects if o["kind"] == "CronJob"))
    cronjob["spec"]["schedule"] = 15
    cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["bogus"] = 1
    isvc = copy.deepcopy(next(o for o in objects if o["kind"] == "InferenceService"))
    isvc["spec"]["predictor"]["minReplicas"] = "one"
    isvc["spec"]["transformer"]["containers"][0]["probes"] = {}
    canary = copy.deepcopy(isvc)
    canary["spec"]["canary"] = [{"trafficPercent": 150, "predictor": {}}]
    unknown = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    report = validate([cronjob, isvc, canary, unknown], isvc_schema)
    text = "\n".join(report.problems)
    assert "CronJob/berth-materialize" in text and "bogus" in text
    assert "minReplicas" in text and "probes: unknown field" in text
    assert "canary.0.trafficPercent" in text
    assert "no schema for example.com/Widget" in text
