"""The canary step's JSON Patch per mode: KServe's Knative percent, a Standard-mode
``spec.canary[]`` entry, or the transformer's canary env (see :mod:`berth.rollout.patches`)."""

from __future__ import annotations

import copy
import hashlib
import re
from typing import Any

from berth.rollout import isvc as iv
from berth.rollout.errors import RolloutError
from berth.rollout.jsonpatch import pointer
from berth.rollout.modes import Mode
from berth.rollout.patch_ops import (
    Patch,
    check_percent,
    env_entry_ops,
    guard,
    model_uri_ops,
    set_in,
    transformer,
)

MODEL_SPECS = frozenset(
    [
        "model",
        "huggingface",
        "lightgbm",
        "onnx",
        "paddle",
        "pmml",
        "pytorch",
        "sklearn",
        "tensorflow",
        "triton",
        "xgboost",
    ]
)
"""Predictor keys holding a model container spec; in a ``spec.canary[]`` entry each requires
``name`` (KServe's CRD), which the primary's may omit."""
CANARY_REFUSED = ("maxReplicas", "scaleMetric", "scaleTarget", "autoScaling")
"""Scale fields KServe's admission webhook refuses on a ``spec.canary[]`` predictor (kserve/kserve
``pkg/apis/serving/v1beta1/inference_service_validation.go``): a canary runs a fixed
``minReplicas`` replicas, here the primary's (at most the stable one's, as the webhook asks)."""
_NAME = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def default_canary_name(storage_uri: str) -> str:
    """``canary-<7 hex of the URI>``: one name per model, valid as a predictor name."""
    return "canary-" + hashlib.sha256(storage_uri.encode()).hexdigest()[:7]


def canary(
    obj: dict[str, Any],
    percent: int,
    mode: Mode,
    *,
    storage_uri: str | None = None,
    host: str | None = None,
    name: str | None = None,
) -> Patch:
    """Send ``percent`` % of traffic to the canary, creating it where the mode allows."""
    check_percent(percent)
    if mode is Mode.KNATIVE:
        return _canary_knative(obj, percent, storage_uri)
    if mode is Mode.STANDARD:
        return _canary_standard(obj, percent, storage_uri, name)
    if storage_uri is not None:
        raise RolloutError(
            "--storage-uri is for KServe canaries; the transformer canary's model is whatever "
            "--host serves"
        )
    return _canary_transformer(obj, percent, host)


def _canary_knative(obj: dict[str, Any], percent: int, uri: str | None) -> Patch:
    predictor = iv.spec(obj)["predictor"]
    ops = [
        *guard(obj),
        {"op": "add", "path": "/spec/predictor/canaryTrafficPercent", "value": percent},
    ]
    summary = f"spec.predictor.canaryTrafficPercent={percent}"
    if uri is not None:
        uri_ops, where = model_uri_ops(("spec", "predictor"), predictor, uri)
        ops += uri_ops
        summary += f", spec.predictor.{where}={uri} (a new revision)"
    return Patch(Mode.KNATIVE, summary, ops)


def _canary_standard(obj: dict[str, Any], percent: int, uri: str | None, name: str | None) -> Patch:
    entries = iv.canaries(obj)
    index = iv.canary_index(obj, name)
    others = sum(int(e.get("trafficPercent", 0)) for i, e in enumerate(entries) if i != index)
    if others + percent > 100:
        raise RolloutError(f"canaries would take {others + percent}% of traffic (at most 100)")
    if index is not None:
        base: iv.Parts = ("spec", "canary", index)
        entry = entries[index]
        label = entry["predictor"].get("name", index)
        ops = guard(obj)
        if "name" in entry["predictor"]:
            ops.append(
                {
                    "op": "test",
                    "path": pointer(*base, "predictor", "name"),
                    "value": entry["predictor"]["name"],
                }
            )
        ops.append({"op": "replace", "path": pointer(*base, "trafficPercent"), "value": percent})
        summary = f"spec.canary[{label}].trafficPercent={percent}"
        if uri is not None:
            uri_ops, where = model_uri_ops((*base, "predictor"), entry["predictor"], uri)
            ops += uri_ops
            summary += f", predictor.{where}={uri}"
        return Patch(Mode.STANDARD, summary, ops)
    if uri is None:
        raise RolloutError("no canary yet: pass --storage-uri (the canary's model) to create one")
    primary = iv.spec(obj)["predictor"]
    canary_name = name or default_canary_name(uri)
    if not _NAME.match(canary_name):
        raise RolloutError(f"canary name {canary_name!r} must match {_NAME.pattern}")
    if canary_name == primary.get("name"):
        raise RolloutError(f"the primary predictor is already called {canary_name!r}: pass --name")
    predictor = copy.deepcopy(primary)
    for key in ("canaryTrafficPercent", *CANARY_REFUSED):
        predictor.pop(key, None)
    predictor["name"] = canary_name
    for key in MODEL_SPECS & predictor.keys():
        # A canary's model spec is a container that must be named (the primary's may omit it).
        predictor[key].setdefault("name", iv.KSERVE_CONTAINER)
    set_in(predictor, iv.model_uri_slot(predictor).parts, uri)
    new: dict[str, Any] = {"predictor": predictor, "trafficPercent": percent}
    op: dict[str, Any]
    if "canary" in iv.spec(obj):
        op = {"op": "add", "path": "/spec/canary/-", "value": new}
    else:
        op = {"op": "add", "path": "/spec/canary", "value": [new]}
    summary = f"spec.canary[{canary_name}] = primary with model {uri}, trafficPercent={percent}"
    return Patch(Mode.STANDARD, summary, [*guard(obj), op])


def _canary_transformer(obj: dict[str, Any], percent: int, host: str | None) -> Patch:
    base, container = transformer(obj)
    host = host or iv.env_value(container, iv.CANARY_HOST)
    if not host:
        raise RolloutError("the transformer has no canary host yet: pass --host HOST[:PORT]")
    env = {iv.CANARY_HOST: host, iv.CANARY_PERCENT: str(percent)}
    summary = f"transformer env {iv.CANARY_HOST}={host}, {iv.CANARY_PERCENT}={percent}"
    return Patch(Mode.TRANSFORMER, summary, [*guard(obj), *env_entry_ops(base, container, env)])
