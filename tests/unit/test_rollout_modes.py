"""Which layer a rollout step acts on, from annotations, status and the transformer env."""

from __future__ import annotations

from typing import Any

import pytest

from berth.rollout import isvc as iv
from berth.rollout.errors import RolloutError
from berth.rollout.modes import Mode, deployment_mode, rollout_mode


def obj(annotation: str | None = None, status: str | None = None, **env: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "driver-ranking", "namespace": "serving"}
    if annotation is not None:
        meta["annotations"] = {iv.MODE_ANNOTATION: annotation}
    container = {
        "name": "kserve-container",
        "env": [{"name": k, "value": v} for k, v in env.items()],
    }
    out: dict[str, Any] = {
        "metadata": meta,
        "spec": {"predictor": {}, "transformer": {"containers": [container]}},
    }
    if status is not None:
        out["status"] = {"deploymentMode": status}
    return out


@pytest.mark.parametrize(
    ("value", "mode"),
    [
        ("Serverless", Mode.KNATIVE),
        ("Knative", Mode.KNATIVE),
        ("RawDeployment", Mode.STANDARD),
        ("Standard", Mode.STANDARD),
    ],
)
def test_annotation(value: str, mode: Mode) -> None:
    assert deployment_mode(obj(value)) is mode


def test_status_when_no_annotation_and_override_wins() -> None:
    assert deployment_mode(obj(status="RawDeployment")) is Mode.STANDARD
    assert deployment_mode(obj("Serverless"), "standard") is Mode.STANDARD


def test_unknown_or_missing_mode() -> None:
    with pytest.raises(RolloutError, match="ModelMesh"):
        deployment_mode(obj("ModelMesh"))
    with pytest.raises(RolloutError, match="--deployment-mode"):
        deployment_mode(obj())


def test_transformer_canary_wins_in_auto() -> None:
    on = obj("Serverless", **{iv.CANARY_HOST: "v2-predictor:80"})
    assert rollout_mode(on) is Mode.TRANSFORMER
    assert rollout_mode(on, "kserve") is Mode.KNATIVE
    off = obj("RawDeployment")
    assert rollout_mode(off) is Mode.STANDARD
    assert rollout_mode(off, host_given=True) is Mode.TRANSFORMER
    assert rollout_mode(off, "transformer") is Mode.TRANSFORMER
