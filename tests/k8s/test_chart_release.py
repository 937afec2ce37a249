"""Chart values of the responsible-release features: the predictor's signing key (mounted
from a Secret or ConfigMap, off by default) and the data-contract alert."""

from __future__ import annotations

from typing import Any

import pytest

from berth.kube.chart import render_objects

pytestmark = pytest.mark.k8s


def _predictor(values: dict[str, Any]) -> dict[str, Any]:
    isvc = next(o for o in render_objects(values) if o["kind"] == "InferenceService")
    predictor: dict[str, Any] = isvc["spec"]["predictor"]
    return predictor


def _env(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in container["env"]}


def test_signing_is_off_by_default() -> None:
    predictor = _predictor({})
    assert "BERTH_PREDICTOR_VERIFY_KEY" not in _env(predictor["containers"][0])
    assert all(v["name"] != "signing-key" for v in predictor["volumes"])


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ({"secretName": "berth-signing"}, {"secret": {"secretName": "berth-signing"}}),
        ({"configMapName": "berth-signing"}, {"configMap": {"name": "berth-signing"}}),
    ],
)
def test_public_key_is_mounted_and_set(source: dict[str, str], expected: dict[str, Any]) -> None:
    key = {"enabled": True, "key": "release.pub.pem", **source}
    predictor = _predictor({"modelSigning": {"publicKey": key}})
    container = predictor["containers"][0]
    assert _env(container)["BERTH_PREDICTOR_VERIFY_KEY"] == "/etc/berth/signing/release.pub.pem"
    mount = next(m for m in container["volumeMounts"] if m["name"] == "signing-key")
    assert mount == {"name": "signing-key", "mountPath": "/etc/berth/signing", "readOnly": True}
    volume = next(v for v in predictor["volumes"] if v["name"] == "signing-key")
    kind = next(iter(expected))
    assert volume[kind] == {
        **expected[kind],
        "items": [{"key": "release.pub.pem", "path": "release.pub.pem"}],
    }


def test_contract_violation_alert() -> None:
    objects = render_objects({"metrics": {"prometheusRule": {"enabled": True}}})
    rule = next(o for o in objects if o["kind"] == "PrometheusRule")
    alerts = {r["alert"]: r for g in rule["spec"]["groups"] for r in g["rules"]}
    alert = alerts["BerthContractViolations"]
    assert "berth_transformer_contract_violations_total" in alert["expr"]
    assert "> 0.01" in alert["expr"] and alert["for"] == "15m"
