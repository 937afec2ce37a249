"""Build the JSON Patch (RFC 6902) of each rollout step from the current InferenceService.

Pure functions: the dict in, a :class:`Patch` out; nothing is sent. Every patch opens with a
``test`` of ``metadata.resourceVersion`` (when the object has one), so the API server refuses
it if the object changed since it was read, and ``test``s each env entry's name before writing
it. JSON Patch rather than a merge patch because env and container lists would otherwise be
replaced whole.

Per mode (see docs/rollouts.md):

- Knative: canary sets ``spec.predictor.canaryTrafficPercent`` (and the new model URI); promote
  removes it (the latest revision takes all traffic); rollback sets it to 0 (the previous
  rolled-out revision takes all traffic, the spec keeps the new model until you change it).
- Standard: canary adds or updates a ``spec.canary[]`` entry ``{predictor, trafficPercent}``
  (a new one copies the primary predictor with a name and the new model URI, less the scale
  fields KServe refuses on a canary: see ``CANARY_REFUSED``); promote makes
  the canary's predictor the primary (same name, so its Deployment is kept) and removes the
  entry; rollback removes the entry.
- Transformer: canary sets ``BERTH_TRANSFORMER_CANARY_PERCENT`` (and ``_CANARY_HOST``);
  promote writes the canary's model URI into the primary predictor and clears the canary env;
  rollback clears the canary env. Shadow sets or clears ``BERTH_TRANSFORMER_SHADOW_HOST``.
"""

from __future__ import annotations

import copy
import hashlib
import re
from dataclasses import dataclass
from typing import Any

from berth.rollout import isvc as iv
from berth.rollout.errors import RolloutError
from berth.rollout.jsonpatch import JsonPatch, apply_json_patch, pointer
from berth.rollout.modes import Mode

CONTENT_TYPE = "application/json-patch+json"
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


@dataclass(frozen=True)
class Patch:
    """One JSON Patch and what it does, in words."""

    mode: Mode
    summary: str
    ops: JsonPatch

    @property
    def changes(self) -> bool:
        return any(op["op"] != "test" for op in self.ops)

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        """The object as the API server would store it (raises ``PatchConflict``)."""
        result: dict[str, Any] = apply_json_patch(obj, self.ops)
        return result


def check_percent(percent: int) -> int:
    if not 0 <= percent <= 100:
        raise RolloutError(f"--percent must be within 0..100, got {percent}")
    return percent


def _guard(obj: dict[str, Any]) -> JsonPatch:
    version = (obj.get("metadata") or {}).get("resourceVersion")
    if not version:
        return []
    return [{"op": "test", "path": "/metadata/resourceVersion", "value": version}]


def _env_ops(
    base: iv.Parts, container: dict[str, Any], set_: dict[str, str], unset: tuple[str, ...] = ()
) -> JsonPatch:
    """Ops that set and remove env entries of ``container`` (at ``base``), names tested."""
    if "env" not in container:
        entries = [{"name": k, "value": v} for k, v in set_.items()]
        return [{"op": "add", "path": pointer(*base, "env"), "value": entries}] if entries else []
    ops: JsonPatch = []
    appends: JsonPatch = []
    for name, value in set_.items():
        index = iv.env_index(container, name)
        if index is None:
            appends.append(
                {
                    "op": "add",
                    "path": pointer(*base, "env", "-"),
                    "value": {"name": name, "value": value},
                }
            )
        else:
            ops.append({"op": "test", "path": pointer(*base, "env", index, "name"), "value": name})
            ops.append(
                {
                    "op": "replace",
                    "path": pointer(*base, "env", index),
                    "value": {"name": name, "value": value},
                }
            )
    found = sorted(
        (i for n in unset if (i := iv.env_index(container, n)) is not None), reverse=True
    )
    for index in found:
        name = container["env"][index]["name"]
        ops.append({"op": "test", "path": pointer(*base, "env", index, "name"), "value": name})
        ops.append({"op": "remove", "path": pointer(*base, "env", index)})
    return ops + appends


def _transformer(obj: dict[str, Any]) -> tuple[iv.Parts, dict[str, Any]]:
    found = iv.transformer_container(obj)
    if found is None:
        raise RolloutError(
            f"{iv.name_of(obj)} has no spec.transformer.containers: the transformer canary and "
            "shadow need Berth's transformer"
        )
    index, container = found
    return ("spec", "transformer", "containers", index), container


def _uri_ops(base: iv.Parts, predictor: dict[str, Any], uri: str) -> tuple[JsonPatch, str]:
    slot = iv.model_uri_slot(predictor)
    ops: JsonPatch = []
    if slot.guard is not None:
        ops.append({"op": "test", "path": pointer(*base, *slot.guard[0]), "value": slot.guard[1]})
    ops.append({"op": "replace", "path": pointer(*base, *slot.parts), "value": uri})
    return ops, slot.where


def _set_in(doc: dict[str, Any], parts: iv.Parts, value: str) -> None:
    node: Any = doc
    for part in parts[:-1]:
        node = node[part]
    node[parts[-1]] = value


def default_canary_name(storage_uri: str) -> str:
    """``canary-<7 hex of the URI>``: one name per model, valid as a predictor name."""
    return "canary-" + hashlib.sha256(storage_uri.encode()).hexdigest()[:7]


# -- canary -------------------------------------------------------------------------------------


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
        *_guard(obj),
        {"op": "add", "path": "/spec/predictor/canaryTrafficPercent", "value": percent},
    ]
    summary = f"spec.predictor.canaryTrafficPercent={percent}"
    if uri is not None:
        uri_ops, where = _uri_ops(("spec", "predictor"), predictor, uri)
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
        ops = _guard(obj)
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
            uri_ops, where = _uri_ops((*base, "predictor"), entry["predictor"], uri)
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
    _set_in(predictor, iv.model_uri_slot(predictor).parts, uri)
    new: dict[str, Any] = {"predictor": predictor, "trafficPercent": percent}
    op: dict[str, Any]
    if "canary" in iv.spec(obj):
        op = {"op": "add", "path": "/spec/canary/-", "value": new}
    else:
        op = {"op": "add", "path": "/spec/canary", "value": [new]}
    summary = f"spec.canary[{canary_name}] = primary with model {uri}, trafficPercent={percent}"
    return Patch(Mode.STANDARD, summary, [*_guard(obj), op])


def _canary_transformer(obj: dict[str, Any], percent: int, host: str | None) -> Patch:
    base, container = _transformer(obj)
    host = host or iv.env_value(container, iv.CANARY_HOST)
    if not host:
        raise RolloutError("the transformer has no canary host yet: pass --host HOST[:PORT]")
    env = {iv.CANARY_HOST: host, iv.CANARY_PERCENT: str(percent)}
    summary = f"transformer env {iv.CANARY_HOST}={host}, {iv.CANARY_PERCENT}={percent}"
    return Patch(Mode.TRANSFORMER, summary, [*_guard(obj), *_env_ops(base, container, env)])


# -- promote / rollback -------------------------------------------------------------------------


def promote(
    obj: dict[str, Any],
    mode: Mode,
    *,
    storage_uri: str | None = None,
    name: str | None = None,
) -> Patch:
    """Make the canary the primary. The transformer mode needs the canary's ``storage_uri``.

    In every mode the transformer's own ``STORAGE_URI`` (the artifact whose ``metadata.json``
    gives it fill values, the drift reference and the contract it checks at start) follows
    the promoted model, so the transformer describes the model that now answers.
    """
    if mode is Mode.KNATIVE:
        predictor = iv.spec(obj)["predictor"]
        if "canaryTrafficPercent" not in predictor:
            raise RolloutError("no canary to promote: spec.predictor has no canaryTrafficPercent")
        follow, also = _transformer_follows(obj, iv.model_uri_slot(predictor).value)
        ops = [
            *_guard(obj),
            {"op": "remove", "path": "/spec/predictor/canaryTrafficPercent"},
            *follow,
        ]
        summary = "remove spec.predictor.canaryTrafficPercent (latest revision 100%)"
        return Patch(mode, summary + also, ops)
    if mode is Mode.STANDARD:
        index = _existing_canary(obj, name)
        entry = iv.canaries(obj)[index]
        follow, also = _transformer_follows(obj, iv.model_uri_slot(entry["predictor"]).value)
        ops = [
            *_guard(obj),
            *_name_test(entry, index),
            {"op": "replace", "path": "/spec/predictor", "value": _promoted(obj, entry)},
            _remove_canary(obj, index),
            *follow,
        ]
        label = entry["predictor"].get("name", index)
        summary = f"spec.predictor = spec.canary[{label}].predictor; entry removed"
        return Patch(mode, summary + also, ops)
    base, container = _transformer(obj)
    if not iv.env_value(container, iv.CANARY_HOST):
        raise RolloutError(f"no transformer canary to promote ({iv.CANARY_HOST} is not set)")
    if not storage_uri:
        raise RolloutError(
            "promoting the transformer canary writes its model into the primary predictor: "
            "pass --storage-uri (the model the canary host serves)"
        )
    uri_ops, where = _uri_ops(("spec", "predictor"), iv.spec(obj)["predictor"], storage_uri)
    follow, also = _transformer_follows(obj, storage_uri)  # by index: before the removals
    env_ops = _env_ops(base, container, {}, (iv.CANARY_HOST, iv.CANARY_PERCENT))
    summary = f"spec.predictor.{where}={storage_uri}; transformer canary env removed{also}"
    return Patch(mode, summary, [*_guard(obj), *uri_ops, *follow, *env_ops])


def _promoted(obj: dict[str, Any], entry: dict[str, Any]) -> dict[str, Any]:
    """The canary's predictor with the primary's scaling (a canary may not carry it)."""
    primary = iv.spec(obj)["predictor"]
    scaling = {k: primary[k] for k in ("minReplicas", *CANARY_REFUSED) if k in primary}
    return {**entry["predictor"], **scaling}


def _transformer_follows(obj: dict[str, Any], uri: str) -> tuple[JsonPatch, str]:
    """Ops pointing the transformer's ``STORAGE_URI`` at ``uri`` (none when it has no such env
    or already points there), and the words for the patch's summary."""
    found = iv.transformer_container(obj)
    if found is None or iv.env_value(found[1], iv.STORAGE_URI_ENV) in (None, uri):
        return [], ""
    base = ("spec", "transformer", "containers", found[0])
    ops = _env_ops(base, found[1], {iv.STORAGE_URI_ENV: uri})
    return ops, f"; transformer {iv.STORAGE_URI_ENV}={uri}"


def rollback(obj: dict[str, Any], mode: Mode, *, name: str | None = None) -> Patch:
    """Send all traffic back to the primary."""
    if mode is Mode.KNATIVE:
        if "canaryTrafficPercent" not in iv.spec(obj)["predictor"]:
            raise RolloutError(
                "no canary to roll back (spec.predictor has no canaryTrafficPercent); to revert "
                "a promoted model, set its previous storageUri"
            )
        ops = [
            *_guard(obj),
            {"op": "add", "path": "/spec/predictor/canaryTrafficPercent", "value": 0},
        ]
        return Patch(mode, "spec.predictor.canaryTrafficPercent=0 (previous revision 100%)", ops)
    if mode is Mode.STANDARD:
        index = _existing_canary(obj, name)
        entry = iv.canaries(obj)[index]
        ops = [*_guard(obj), *_name_test(entry, index), _remove_canary(obj, index)]
        label = entry["predictor"].get("name", index)
        return Patch(mode, f"spec.canary[{label}] removed", ops)
    base, container = _transformer(obj)
    if not iv.env_value(container, iv.CANARY_HOST):
        raise RolloutError(f"no transformer canary to roll back ({iv.CANARY_HOST} is not set)")
    env_ops = _env_ops(base, container, {}, (iv.CANARY_HOST, iv.CANARY_PERCENT))
    return Patch(mode, "transformer canary env removed", [*_guard(obj), *env_ops])


def _existing_canary(obj: dict[str, Any], name: str | None) -> int:
    index = iv.canary_index(obj, name)
    if index is None:
        which = f"called {name!r} " if name else ""
        raise RolloutError(f"no canary {which}in spec.canary")
    return index


def _name_test(entry: dict[str, Any], index: int) -> JsonPatch:
    if "name" not in entry["predictor"]:
        return []
    path = pointer("spec", "canary", index, "predictor", "name")
    return [{"op": "test", "path": path, "value": entry["predictor"]["name"]}]


def _remove_canary(obj: dict[str, Any], index: int) -> dict[str, Any]:
    if len(iv.canaries(obj)) == 1:
        return {"op": "remove", "path": "/spec/canary"}
    return {"op": "remove", "path": pointer("spec", "canary", index)}


# -- shadow -------------------------------------------------------------------------------------


def shadow(obj: dict[str, Any], host: str | None) -> Patch:
    """Mirror requests to ``host`` (the transformer's shadow), or stop mirroring (None)."""
    base, container = _transformer(obj)
    if host is None:
        ops = _env_ops(base, container, {}, (iv.SHADOW_HOST,))
        summary = f"transformer env {iv.SHADOW_HOST} removed" if ops else "shadow already off"
    else:
        ops = _env_ops(base, container, {iv.SHADOW_HOST: host})
        summary = f"transformer env {iv.SHADOW_HOST}={host}"
    return Patch(Mode.TRANSFORMER, summary, [*_guard(obj), *ops] if ops else [])
