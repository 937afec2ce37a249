"""Read the parts of an InferenceService dict that rollouts touch (no server, no kubernetes).

The transformer's canary and shadow are env entries of its container; a predictor keeps its
model URI in one of four places, found by :func:`model_uri_slot`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from berth.rollout.errors import RolloutError

GROUP, VERSION, PLURAL = "serving.kserve.io", "v1beta1", "inferenceservices"
MODE_ANNOTATION = "serving.kserve.io/deploymentMode"

CANARY_HOST = "BERTH_TRANSFORMER_CANARY_HOST"
"""Transformer env: host[:port] of the canary predictor (the transformer's weighted canary)."""
CANARY_PERCENT = "BERTH_TRANSFORMER_CANARY_PERCENT"
"""Transformer env: share of customers (0-100, sticky by customer-id hash) sent to the canary."""
SHADOW_HOST = "BERTH_TRANSFORMER_SHADOW_HOST"
"""Transformer env: host[:port] of the shadow predictor (a copy of each request, answer unused)."""
STORAGE_URI_ENV = "STORAGE_URI"
"""KServe's env on a custom predictor container: the model its storage initializer downloads."""

KSERVE_CONTAINER = "kserve-container"

Parts = tuple[str | int, ...]


def spec(isvc: dict[str, Any]) -> dict[str, Any]:
    value = isvc.get("spec")
    if not isinstance(value, dict) or not isinstance(value.get("predictor"), dict):
        raise RolloutError("the object has no spec.predictor: is it an InferenceService?")
    return value


def name_of(isvc: dict[str, Any]) -> str:
    meta = isvc.get("metadata") or {}
    return f"{meta.get('namespace', '?')}/{meta.get('name', '?')}"


def _main_container(containers: list[dict[str, Any]]) -> int:
    for i, container in enumerate(containers):
        if container.get("name") == KSERVE_CONTAINER:
            return i
    return 0


def transformer_container(isvc: dict[str, Any]) -> tuple[int, dict[str, Any]] | None:
    """(index, container) of the transformer's main container, or None without a transformer."""
    containers = (spec(isvc).get("transformer") or {}).get("containers") or []
    if not containers:
        return None
    index = _main_container(containers)
    return index, containers[index]


def env_index(container: dict[str, Any], name: str) -> int | None:
    for i, entry in enumerate(container.get("env") or []):
        if entry.get("name") == name:
            return i
    return None


def env_value(container: dict[str, Any], name: str) -> str | None:
    index = env_index(container, name)
    return None if index is None else container["env"][index].get("value")


def transformer_env(isvc: dict[str, Any], name: str) -> str | None:
    found = transformer_container(isvc)
    return None if found is None else env_value(found[1], name)


@dataclass(frozen=True)
class UriSlot:
    """Where a predictor spec keeps its model URI, relative to the predictor spec.

    ``guard`` is a (path, value) pair a JSON Patch tests before writing (the env entry's name),
    so a reordered env list makes the patch fail instead of writing the wrong entry.
    """

    parts: Parts
    value: str
    guard: tuple[Parts, str] | None = None
    where: str = ""


def model_uri_slot(predictor: dict[str, Any]) -> UriSlot:
    """The model URI of a predictor spec: ``model.storageUri``, ``<framework>.storageUri``,
    a single ``storageUris[0].uri`` or the main container's ``STORAGE_URI`` env, in that order."""
    model = predictor.get("model")
    if isinstance(model, dict) and model.get("storageUri"):
        return UriSlot(("model", "storageUri"), model["storageUri"], where="model.storageUri")
    for key, value in predictor.items():
        if key != "model" and isinstance(value, dict) and value.get("storageUri"):
            return UriSlot((key, "storageUri"), value["storageUri"], where=f"{key}.storageUri")
    uris = predictor.get("storageUris") or []
    if len(uris) == 1 and uris[0].get("uri"):
        return UriSlot(("storageUris", 0, "uri"), uris[0]["uri"], where="storageUris[0].uri")
    containers = predictor.get("containers") or []
    if containers:
        ci = _main_container(containers)
        ei = env_index(containers[ci], STORAGE_URI_ENV)
        if ei is not None and containers[ci]["env"][ei].get("value"):
            base: Parts = ("containers", ci, "env", ei)
            return UriSlot(
                (*base, "value"),
                containers[ci]["env"][ei]["value"],
                guard=((*base, "name"), STORAGE_URI_ENV),
                where=f"containers[{ci}].env {STORAGE_URI_ENV}",
            )
    raise RolloutError(
        "the predictor has no model URI (model.storageUri, <framework>.storageUri, "
        f"storageUris[0].uri or a {STORAGE_URI_ENV} env on its container)"
    )


def canaries(isvc: dict[str, Any]) -> list[dict[str, Any]]:
    """Standard mode's ``spec.canary[]`` entries (each ``{predictor, trafficPercent}``)."""
    return list(spec(isvc).get("canary") or [])


def canary_index(isvc: dict[str, Any], name: str | None) -> int | None:
    """Index of the Standard canary called ``name`` (the only one when ``name`` is None)."""
    entries = canaries(isvc)
    if name is None:
        if len(entries) > 1:
            names = ", ".join(str(e["predictor"].get("name")) for e in entries)
            raise RolloutError(f"several canaries ({names}): pass --name")
        return 0 if entries else None
    for i, entry in enumerate(entries):
        if entry.get("predictor", {}).get("name") == name:
            return i
    return None
