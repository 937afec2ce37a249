"""Check an InferenceService dict against KServe's CRD schema (``openAPIV3Schema``).

Two checks, because the API server does two things: it rejects what breaks the schema, and
it silently *prunes* fields the schema does not know -- a misspelt field in a patch would be
dropped without an error. :func:`problems` reports both. The CRD file is third-party data
(``../shared/kserve/`` in this workspace, or ``$BERTH_KSERVE_CRDS``); it is not shipped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

ISVC_CRD = "serving.kserve.io_inferenceservices.yaml"


def isvc_schema(crd_dir: Path, version: str = "v1beta1") -> dict[str, Any]:
    """The ``openAPIV3Schema`` of InferenceService ``version`` in ``crd_dir``."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: ~10x faster on 39k lines
    crd = yaml.load((crd_dir / ISVC_CRD).read_text(), Loader=loader)
    for entry in crd["spec"]["versions"]:
        if entry["name"] == version:
            schema: dict[str, Any] = entry["schema"]["openAPIV3Schema"]
            return schema
    raise LookupError(f"{ISVC_CRD} has no version {version}")


def unknown_fields(obj: Any, schema: dict[str, Any], path: str = "") -> list[str]:
    """Paths in ``obj`` the schema does not declare (the API server would prune them)."""
    dot = "." if path else ""
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return []
    found: list[str] = []
    if isinstance(obj, dict):
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        for key, value in obj.items():
            if props is not None and key in props:
                found += unknown_fields(value, props[key], f"{path}{dot}{key}")
            elif isinstance(extra, dict):
                found += unknown_fields(value, extra, f"{path}{dot}{key}")
            elif props is not None and extra is not True:
                found.append(f"{path}{dot}{key}")
    elif isinstance(obj, list) and isinstance(schema.get("items"), dict):
        for i, value in enumerate(obj):
            found += unknown_fields(value, schema["items"], f"{path}[{i}]")
    return found


def problems(obj: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    """Schema violations and unknown fields of ``obj``; empty when the API server would take
    it as is."""
    from jsonschema import Draft202012Validator

    errors = [
        f"{'.'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}"
        for e in Draft202012Validator(schema).iter_errors(obj)
    ]
    return errors + [f"{p}: unknown field (pruned)" for p in unknown_fields(obj, schema)]
