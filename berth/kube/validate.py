"""Validate rendered objects without a cluster.

Core kinds go through ``kubernetes-validate`` (the API's OpenAPI schemas, strict: unknown fields
fail). It passes a kind it has no schema for, so custom resources are handled here: an
InferenceService against the ``openAPIV3Schema`` of KServe's CRD (``berth.rollout.crd``:
schema errors and fields the API server would prune); the Prometheus Operator and Istio kinds,
whose CRDs are not in this workspace, are only counted as unchecked. Callers gate on the
counts, not only on the absence of problems.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

KUBERNETES_VERSION = "1.32.0"
UNCHECKED_KINDS = frozenset(
    {
        ("monitoring.coreos.com", "PodMonitor"),
        ("monitoring.coreos.com", "PrometheusRule"),
        ("security.istio.io", "AuthorizationPolicy"),
    }
)
"""Custom resources with no schema here: allowed, reported as unchecked."""


@dataclass
class Report:
    """What was validated and how, and every problem found."""

    checked: Counter[str] = field(default_factory=Counter)
    """Validator -> objects it validated (``kubernetes-<version>``, ``kserve-crd``)."""
    unchecked: Counter[str] = field(default_factory=Counter)
    """Kind -> objects nothing validated (known custom resources only)."""
    problems: list[str] = field(default_factory=list)

    def __iadd__(self, other: Report) -> Report:
        self.checked += other.checked
        self.unchecked += other.unchecked
        self.problems += other.problems
        return self


def _name(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    return f"{obj.get('kind')}/{meta.get('name')}"


def validate(
    objects: list[dict[str, Any]],
    isvc_schema: dict[str, Any] | None,
    version: str = KUBERNETES_VERSION,
) -> Report:
    """Validate ``objects``. Without ``isvc_schema`` InferenceServices count as unchecked."""
    import kubernetes_validate

    from berth.rollout.crd import problems as isvc_problems

    report = Report()
    for obj in objects:
        group = str(obj.get("apiVersion", "")).rpartition("/")[0]
        kind = str(obj.get("kind"))
        if (group, kind) == ("serving.kserve.io", "InferenceService"):
            if isvc_schema is None:
                report.unchecked[kind] += 1
                continue
            report.problems += [f"{_name(obj)}: {p}" for p in isvc_problems(obj, isvc_schema)]
            report.checked["kserve-crd"] += 1
            continue
        try:
            used = kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            if (group, kind) in UNCHECKED_KINDS:
                report.unchecked[kind] += 1
            else:
                report.problems.append(f"{_name(obj)}: no schema for {group}/{kind}")
            continue
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path) or "(root)"
            report.problems.append(f"{_name(obj)}: {path}: {exc.message}")
            continue
        report.checked[f"kubernetes-{used}"] += 1
    return report
