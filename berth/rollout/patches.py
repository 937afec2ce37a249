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

from typing import Any

from berth.rollout import isvc as iv
from berth.rollout.canary_patches import CANARY_REFUSED, MODEL_SPECS, canary, default_canary_name
from berth.rollout.errors import RolloutError
from berth.rollout.jsonpatch import JsonPatch, pointer
from berth.rollout.modes import Mode
from berth.rollout.patch_ops import (
    CONTENT_TYPE,
    Patch,
    check_percent,
    env_entry_ops,
    guard,
    model_uri_ops,
    transformer,
)

__all__ = [
    "CANARY_REFUSED",
    "CONTENT_TYPE",
    "MODEL_SPECS",
    "Patch",
    "canary",
    "check_percent",
    "default_canary_name",
    "promote",
    "rollback",
    "shadow",
]


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
            *guard(obj),
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
            *guard(obj),
            *_name_test(entry, index),
            {"op": "replace", "path": "/spec/predictor", "value": _promoted(obj, entry)},
            _remove_canary(obj, index),
            *follow,
        ]
        label = entry["predictor"].get("name", index)
        summary = f"spec.predictor = spec.canary[{label}].predictor; entry removed"
        return Patch(mode, summary + also, ops)
    base, container = transformer(obj)
    if not iv.env_value(container, iv.CANARY_HOST):
        raise RolloutError(f"no transformer canary to promote ({iv.CANARY_HOST} is not set)")
    if not storage_uri:
        raise RolloutError(
            "promoting the transformer canary writes its model into the primary predictor: "
            "pass --storage-uri (the model the canary host serves)"
        )
    uri_ops, where = model_uri_ops(("spec", "predictor"), iv.spec(obj)["predictor"], storage_uri)
    follow, also = _transformer_follows(obj, storage_uri)  # by index: before the removals
    env_ops = env_entry_ops(base, container, {}, (iv.CANARY_HOST, iv.CANARY_PERCENT))
    summary = f"spec.predictor.{where}={storage_uri}; transformer canary env removed{also}"
    return Patch(mode, summary, [*guard(obj), *uri_ops, *follow, *env_ops])


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
    ops = env_entry_ops(base, found[1], {iv.STORAGE_URI_ENV: uri})
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
            *guard(obj),
            {"op": "add", "path": "/spec/predictor/canaryTrafficPercent", "value": 0},
        ]
        return Patch(mode, "spec.predictor.canaryTrafficPercent=0 (previous revision 100%)", ops)
    if mode is Mode.STANDARD:
        index = _existing_canary(obj, name)
        entry = iv.canaries(obj)[index]
        ops = [*guard(obj), *_name_test(entry, index), _remove_canary(obj, index)]
        label = entry["predictor"].get("name", index)
        return Patch(mode, f"spec.canary[{label}] removed", ops)
    base, container = transformer(obj)
    if not iv.env_value(container, iv.CANARY_HOST):
        raise RolloutError(f"no transformer canary to roll back ({iv.CANARY_HOST} is not set)")
    env_ops = env_entry_ops(base, container, {}, (iv.CANARY_HOST, iv.CANARY_PERCENT))
    return Patch(mode, "transformer canary env removed", [*guard(obj), *env_ops])


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
    base, container = transformer(obj)
    if host is None:
        ops = env_entry_ops(base, container, {}, (iv.SHADOW_HOST,))
        summary = f"transformer env {iv.SHADOW_HOST} removed" if ops else "shadow already off"
    else:
        ops = env_entry_ops(base, container, {iv.SHADOW_HOST: host})
        summary = f"transformer env {iv.SHADOW_HOST}={host}"
    return Patch(Mode.TRANSFORMER, summary, [*guard(obj), *ops] if ops else [])
