"""``berth rollout status``: where the traffic goes, read from the InferenceService dict.

In Knative mode the spec holds only the latest model: during a canary the primary is the
previous rolled-out *revision* (named in ``status.components.predictor``), not a spec field.
"""

from __future__ import annotations

from typing import Any

from berth.rollout import isvc as iv
from berth.rollout.errors import RolloutError
from berth.rollout.modes import Mode, deployment_mode, transformer_canary_on


def _uri(predictor: dict[str, Any]) -> str | None:
    try:
        return iv.model_uri_slot(predictor).value
    except RolloutError:
        return None


def _ready(obj: dict[str, Any]) -> str | None:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return str(cond.get("status"))
    return None


def summarize(obj: dict[str, Any], deployment_override: str | None = None) -> dict[str, Any]:
    """A JSON-able summary: mode, primary, canary (per layer), shadow, readiness."""
    predictor = iv.spec(obj)["predictor"]
    mode = deployment_mode(obj, deployment_override)
    status = obj.get("status") or {}
    primary: dict[str, Any] = {"name": predictor.get("name"), "modelUri": _uri(predictor)}
    canary: dict[str, Any] | None = None
    if mode is Mode.KNATIVE and "canaryTrafficPercent" in predictor:
        component = (status.get("components") or {}).get("predictor") or {}
        primary = {"revision": component.get("previousRolledoutRevision")}
        canary = {
            "layer": "knative",
            "percent": predictor["canaryTrafficPercent"],
            "modelUri": _uri(predictor),
            "revision": component.get("latestReadyRevision"),
            "traffic": [
                {k: t.get(k) for k in ("revisionName", "percent", "tag", "latestRevision")}
                for t in component.get("traffic") or []
            ],
        }
    elif mode is Mode.STANDARD and iv.canaries(obj):
        ready = {c.get("name"): c.get("ready") for c in status.get("canaryStatuses") or []}
        canary = {
            "layer": "standard",
            "entries": [
                {
                    "name": e["predictor"].get("name"),
                    "percent": e.get("trafficPercent"),
                    "modelUri": _uri(e["predictor"]),
                    "ready": ready.get(e["predictor"].get("name")),
                }
                for e in iv.canaries(obj)
            ],
        }
    transformer = None
    if transformer_canary_on(obj):
        percent = iv.transformer_env(obj, iv.CANARY_PERCENT)
        transformer = {
            "layer": "transformer",
            "host": iv.transformer_env(obj, iv.CANARY_HOST),
            "percent": int(percent) if percent and percent.isdigit() else percent,
        }
    return {
        "name": iv.name_of(obj),
        "deploymentMode": mode.value,
        "ready": _ready(obj),
        "primary": primary,
        "canary": canary,
        "transformerCanary": transformer,
        "shadow": iv.transformer_env(obj, iv.SHADOW_HOST),
    }


def _or(value: Any) -> str:
    return "?" if value is None else str(value)


def render(summary: dict[str, Any]) -> str:
    """The summary as a few aligned lines."""
    primary, canary = summary["primary"], summary["canary"]
    lines = [
        f"inferenceservice   {summary['name']}  ({summary['deploymentMode']}, "
        f"ready={summary['ready'] or '?'})"
    ]
    if "revision" in primary:
        lines.append(f"primary            previous rolled-out revision {_or(primary['revision'])}")
    else:
        lines.append(
            f"primary            {primary['name'] or '(default)'}  {_or(primary['modelUri'])}"
        )
    if canary is None:
        lines.append("canary             none")
    elif canary["layer"] == "knative":
        lines.append(
            f"canary             {canary['percent']}%  {_or(canary['modelUri'])}  "
            f"(latest revision {_or(canary['revision'])})"
        )
    else:
        lines += [
            f"canary             {e['name']} {e['percent']}%  {_or(e['modelUri'])}  "
            f"ready={_or(e['ready'])}"
            for e in canary["entries"]
        ]
    tc = summary["transformerCanary"]
    lines.append(
        f"transformer canary {tc['host']} {tc['percent']}%" if tc else "transformer canary none"
    )
    lines.append(f"shadow             {summary['shadow'] or 'off'}")
    return "\n".join(lines)
