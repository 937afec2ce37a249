"""The building blocks of the rollout patches: :class:`Patch`, the ``resourceVersion`` guard,
env entry ops with their names tested, and the model-URI ops."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from berth.rollout import isvc as iv
from berth.rollout.errors import RolloutError
from berth.rollout.jsonpatch import JsonPatch, apply_json_patch, pointer
from berth.rollout.modes import Mode

CONTENT_TYPE = "application/json-patch+json"


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


def guard(obj: dict[str, Any]) -> JsonPatch:
    version = (obj.get("metadata") or {}).get("resourceVersion")
    if not version:
        return []
    return [{"op": "test", "path": "/metadata/resourceVersion", "value": version}]


def env_entry_ops(
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


def transformer(obj: dict[str, Any]) -> tuple[iv.Parts, dict[str, Any]]:
    found = iv.transformer_container(obj)
    if found is None:
        raise RolloutError(
            f"{iv.name_of(obj)} has no spec.transformer.containers: the transformer canary and "
            "shadow need Berth's transformer"
        )
    index, container = found
    return ("spec", "transformer", "containers", index), container


def model_uri_ops(base: iv.Parts, predictor: dict[str, Any], uri: str) -> tuple[JsonPatch, str]:
    slot = iv.model_uri_slot(predictor)
    ops: JsonPatch = []
    if slot.guard is not None:
        ops.append({"op": "test", "path": pointer(*base, *slot.guard[0]), "value": slot.guard[1]})
    ops.append({"op": "replace", "path": pointer(*base, *slot.parts), "value": uri})
    return ops, slot.where


def set_in(doc: dict[str, Any], parts: iv.Parts, value: str) -> None:
    node: Any = doc
    for part in parts[:-1]:
        node = node[part]
    node[parts[-1]] = value
