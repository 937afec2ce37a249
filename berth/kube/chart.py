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
) -> dict[str, str]:
    """Template path -> rendered text, as ``helm template`` renders them (schema checked)."""
    import helm_python

    with helm_python.Chart.load(chart_dir) as chart:
        rendered: dict[str, str] = chart.render(
            values or {}, name=release, namespace=namespace, is_install=True
        )
    return rendered


def render_objects(
    values: dict[str, Any] | None = None,
    *,
    chart_dir: Path = CHART_DIR,
    release: str = RELEASE,
    namespace: str = NAMESPACE,
    hooks: bool = False,
) -> list[Obj]:
    """The Kubernetes objects the chart renders for ``values``, in template order.

    Hooks (``helm test`` pods and their policies) are left out unless ``hooks``: they are
    Helm's, not part of what ``kubectl apply`` installs.
    """
    import yaml

    objects: list[Obj] = []
    rendered = render_templates(values, chart_dir=chart_dir, release=release, namespace=namespace)
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
