"""``berth rollout status`` from InferenceService dicts in each mode (no server)."""

from __future__ import annotations

from typing import Any

from berth.rollout import isvc as iv
from berth.rollout.status import render, summarize


def obj(mode: str, predictor: dict[str, Any], **extra: Any) -> dict[str, Any]:
    env = [
        {"name": iv.CANARY_HOST, "value": "v3-predictor:80"},
        {"name": iv.CANARY_PERCENT, "value": "5"},
        {"name": iv.SHADOW_HOST, "value": "shadow:80"},
    ]
    return {
        "metadata": {"name": "dr", "namespace": "ns", "annotations": {iv.MODE_ANNOTATION: mode}},
        "spec": {
            "predictor": predictor,
            "transformer": {"containers": [{"name": "kserve-container", "env": env}]},
            **extra.pop("spec", {}),
        },
        **extra,
    }


def test_knative_canary() -> None:
    predictor = {"canaryTrafficPercent": 20, "model": {"storageUri": "s3://v2"}}
    component = {
        "latestReadyRevision": "dr-predictor-00002",
        "previousRolledoutRevision": "dr-predictor-00001",
        "traffic": [
            {"revisionName": "dr-predictor-00002", "percent": 20, "latestRevision": True},
            {"revisionName": "dr-predictor-00001", "percent": 80, "tag": "prev"},
        ],
    }
    summary = summarize(
        obj("Serverless", predictor, status={"components": {"predictor": component}})
    )
    assert summary["primary"] == {"revision": "dr-predictor-00001"}
    assert summary["canary"]["traffic"][1]["percent"] == 80
    text = render(summary)
    assert "previous rolled-out revision dr-predictor-00001" in text
    assert "canary             20%  s3://v2  (latest revision dr-predictor-00002)" in text
    assert (
        "transformer canary v3-predictor:80 5%" in text and "shadow             shadow:80" in text
    )


def test_standard_canaries() -> None:
    predictor = {"name": "v1", "model": {"storageUri": "s3://v1"}}
    canary = [
        {"predictor": {"name": "v2", "model": {"storageUri": "s3://v2"}}, "trafficPercent": 10}
    ]
    status = {"canaryStatuses": [{"name": "v2", "ready": True, "trafficPercent": 10}]}
    text = render(
        summarize(obj("RawDeployment", predictor, spec={"canary": canary}, status=status))
    )
    assert "primary            v1  s3://v1" in text
    assert "canary             v2 10%  s3://v2  ready=True" in text
