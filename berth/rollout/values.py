"""``--emit-values``: each rollout step as the Helm values change that makes it, for teams whose
InferenceService is owned by ``helm upgrade`` or a GitOps controller (a ``berth rollout``
patch of a field Helm or Argo CD owns is reverted by the next upgrade or sync).

Keys are the chart's (``helm/berth/values.yaml``: ``canary.*``, ``shadow.*``,
``inferenceService.storageUri``). The output is YAML for ``helm upgrade -f`` or a commit to
the values file a GitOps controller syncs; nothing is sent to the cluster.
"""

from __future__ import annotations

from typing import Any

from berth.rollout.errors import RolloutError

Values = dict[str, Any]


def canary(percent: int, via: str, storage_uri: str | None, name: str | None) -> Values:
    """``canary.enabled``, its share, and (when given) its model, layer and name."""
    change: Values = {"enabled": True, "trafficPercent": percent}
    if storage_uri:
        change["storageUri"] = storage_uri
    if via != "auto":
        change["via"] = via
    if name:
        change["name"] = name
    return {"canary": change}


def promote(storage_uri: str | None) -> Values:
    """The canary's model becomes the primary's; the canary is switched off."""
    if not storage_uri:
        raise RolloutError(
            "promote --emit-values writes the canary's model into inferenceService.storageUri: "
            "pass --storage-uri (your values' canary.storageUri)"
        )
    return {"inferenceService": {"storageUri": storage_uri}, "canary": {"enabled": False}}


def rollback() -> Values:
    """The canary is switched off; the primary (``inferenceService.storageUri``) stays."""
    return {"canary": {"enabled": False}}


def shadow(enable: bool, storage_uri: str | None) -> Values:
    """The chart builds the shadow ``<name>-shadow`` from a model, not from a host."""
    if not enable:
        return {"shadow": {"enabled": False}}
    if not storage_uri:
        raise RolloutError(
            "shadow --enable --emit-values needs --storage-uri: the chart makes the shadow "
            "InferenceService from the model (shadow.storageUri), not from a --host"
        )
    return {"shadow": {"enabled": True, "storageUri": storage_uri}}


def render(values: Values, summary: str) -> str:
    """YAML with a header comment saying what it does and how to use it."""
    import yaml

    head = (
        f"# berth rollout --emit-values: {summary}\n"
        "# Apply with `helm upgrade --reuse-values -f THIS_FILE` or commit it to the values\n"
        "# your GitOps controller syncs; nothing was sent to the cluster.\n"
    )
    body = yaml.safe_dump(values, sort_keys=False) if values else "{}\n"
    return head + body
