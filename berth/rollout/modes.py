"""Which traffic layer a rollout step acts on: Knative, Standard, or the transformer.

KServe's deployment mode comes from the ``serving.kserve.io/deploymentMode`` annotation
(``Serverless``/``Knative`` or ``RawDeployment``/``Standard``), else from
``status.deploymentMode`` that the controller writes. The transformer's own canary is on when
its container has ``BERTH_TRANSFORMER_CANARY_HOST``; it works in either mode.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from berth.rollout.errors import RolloutError
from berth.rollout.isvc import CANARY_HOST, MODE_ANNOTATION, transformer_env


class Mode(StrEnum):
    """Where the canary's traffic is split."""

    KNATIVE = "knative"
    """``spec.predictor.canaryTrafficPercent`` (Knative revisions)."""
    STANDARD = "standard"
    """``spec.canary[]`` entries (RawDeployment / Standard, KServe >= 0.20)."""
    TRANSFORMER = "transformer"
    """The Berth transformer's weighted, customer-sticky canary (any mode)."""


Via = Literal["auto", "kserve", "transformer"]

_MODES = {
    "serverless": Mode.KNATIVE,
    "knative": Mode.KNATIVE,
    "rawdeployment": Mode.STANDARD,
    "standard": Mode.STANDARD,
}


def deployment_mode(isvc: dict[str, Any], override: str | None = None) -> Mode:
    """KServe's deployment mode of ``isvc``: :attr:`Mode.KNATIVE` or :attr:`Mode.STANDARD`."""
    annotations = (isvc.get("metadata") or {}).get("annotations") or {}
    raw = (
        override
        or annotations.get(MODE_ANNOTATION)
        or (isvc.get("status") or {}).get("deploymentMode")
    )
    if not raw:
        raise RolloutError(
            f"cannot tell the deployment mode: no {MODE_ANNOTATION} annotation and no "
            "status.deploymentMode; pass --deployment-mode knative|standard"
        )
    mode = _MODES.get(str(raw).lower())
    if mode is None:
        raise RolloutError(f"deployment mode {raw!r} is not supported (Serverless or Standard)")
    return mode


def transformer_canary_on(isvc: dict[str, Any]) -> bool:
    return bool(transformer_env(isvc, CANARY_HOST))


def rollout_mode(
    isvc: dict[str, Any],
    via: Via = "auto",
    *,
    host_given: bool = False,
    deployment_override: str | None = None,
) -> Mode:
    """The layer a canary/promote/rollback acts on.

    ``auto``: the transformer when its canary env is set or a canary ``--host`` is given,
    otherwise KServe's own canary for the deployment mode.
    """
    if via == "transformer" or (via == "auto" and (host_given or transformer_canary_on(isvc))):
        return Mode.TRANSFORMER
    return deployment_mode(isvc, deployment_override)
