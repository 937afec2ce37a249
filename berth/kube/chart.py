"""Render and lint ``helm/berth`` offline with the Helm SDK (``helm-python-sdk``).

``helm_python`` binds Helm's Go SDK (v4) through a bundled C library: no ``helm`` binary and no
cluster. It is imported inside the functions so that ``import berth.kube`` stays cheap.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART_DIR = REPO_ROOT / "helm" / "berth"
RELEASE = "berth"
"""Release name the manifests are rendered with (resource prefix ``berth-``)."""
NAMESPACE = "berth"
"""Namespace the manifests are rendered into."""
HOOK_ANNOTATION = "helm.sh/hook"
MONITORING_API = "monitoring.coreos.com/v1"
"""The Prometheus Operator's API: PodMonitor and PrometheusRule render only where it is served."""
CLUSTER_API_VERSIONS: tuple[str, ...] = (
    "serving.kserve.io/v1beta1",
    MONITORING_API,
    "security.istio.io/v1",
)
"""The custom APIs of the cluster a scenario renders for (``helm template --api-versions``):
KServe, the Prometheus Operator and Istio."""
SCENARIO_API_VERSIONS: dict[str, tuple[str, ...]] = {
    "no-prometheus-operator": tuple(v for v in CLUSTER_API_VERSIONS if v != MONITORING_API),
}
"""Scenarios rendered for a cluster with other APIs than :data:`CLUSTER_API_VERSIONS`."""

Obj = dict[str, Any]
Key = tuple[str, str, str, str]


def scenario_values(scenario: str, chart_dir: Path = CHART_DIR) -> dict[str, Any]:
    """The values of ``ci/<scenario>-values.yaml`` (a comment-only file is ``{}``)."""
    import yaml

    path = chart_dir / "ci" / f"{scenario}-values.yaml"
    values = yaml.safe_load(path.read_text())
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ValueError(f"{path}: values must be a mapping")
    return values


def scenario_api_versions(scenario: str) -> tuple[str, ...]:
    """The API versions ``ci/<scenario>-values.yaml`` renders with."""
    return SCENARIO_API_VERSIONS.get(scenario, CLUSTER_API_VERSIONS)


def scenarios(chart_dir: Path = CHART_DIR) -> list[str]:
    """Names of the chart's CI scenarios (``ci/<name>-values.yaml``), sorted."""
    suffix = "-values.yaml"
    return sorted(p.name[: -len(suffix)] for p in (chart_dir / "ci").glob(f"*{suffix}"))


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Deep merge of two values mappings, as Helm coalesces ``-f a.yaml -f b.yaml``."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def render_templates(
    values: dict[str, Any] | None = None,
    *,
    chart_dir: Path = CHART_DIR,
    release: str = RELEASE,
    namespace: str = NAMESPACE,
    api_versions: tuple[str, ...] = CLUSTER_API_VERSIONS,
) -> dict[str, str]:
    """Template path -> rendered text, as ``helm template --api-versions ...`` renders them
    (schema checked). ``Chart.render`` of helm-python-sdk 0.2.2 has no parameter for the API
    versions its C library takes (``api_versions``), so its render call is made directly."""
    import json

    import helm_python
    from helm_python import _native

    opts = {
        "name": release,
        "namespace": namespace,
        "is_install": True,
        "api_versions": list(api_versions),
    }
    with helm_python.Chart.load(chart_dir) as chart:
        payload = json.dumps(values or {})
        out = _native.call_string("helm_render", chart._raw(), payload, json.dumps(opts))
    rendered: dict[str, str] = json.loads(out)
    return rendered


def render_objects(
    values: dict[str, Any] | None = None,
    *,
    chart_dir: Path = CHART_DIR,
    release: str = RELEASE,
    namespace: str = NAMESPACE,
    hooks: bool = False,
    api_versions: tuple[str, ...] = CLUSTER_API_VERSIONS,
) -> list[Obj]:
    """The Kubernetes objects the chart renders for ``values``, in template order.

    Hooks (``helm test`` pods and their policies) are left out unless ``hooks``: they are
    Helm's, not part of what ``kubectl apply`` installs.
    """
    import yaml

    objects: list[Obj] = []
    rendered = render_templates(
        values, chart_dir=chart_dir, release=release, namespace=namespace, api_versions=api_versions
    )
    for template in sorted(rendered):
        if not template.endswith((".yaml", ".yml")):
            continue  # NOTES.txt
        for doc in yaml.safe_load_all(rendered[template]):
            if not doc:
                continue
            annotations = (doc.get("metadata") or {}).get("annotations") or {}
            if HOOK_ANNOTATION in annotations and not hooks:
                continue
            objects.append(doc)
    return objects


def lint(
    values: dict[str, Any] | None = None,
    *,
    chart_dir: Path = CHART_DIR,
    namespace: str = NAMESPACE,
    kube_version: str | None = None,
) -> list[dict[str, Any]]:
    """``helm lint --strict`` findings as ``[{severity, path, error}]`` (3 = error,
    2 = warning, 1 = info)."""
    import helm_python

    report = helm_python.lint(
        chart_dir, values or {}, strict=True, namespace=namespace, kube_version=kube_version
    )
    messages: list[dict[str, Any]] = report.get("messages") or []
    return messages


def key(obj: Obj) -> Key:
    """(API group, kind, namespace, name): what identifies an object in a cluster."""
    api_version = str(obj.get("apiVersion", ""))
    group = api_version.rpartition("/")[0]
    meta = obj.get("metadata") or {}
    return group, str(obj.get("kind", "")), str(meta.get("namespace", "")), str(meta.get("name"))
