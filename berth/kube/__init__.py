"""Berth's Kubernetes delivery: the Helm chart (``helm/berth``) is the one source of truth.

``manifests/`` (the kustomize base and overlays for ``kubectl apply -k``) is rendered from the
chart by ``python -m berth.kube render-manifests``; ``--check`` fails when the files on disk
differ from a fresh render. Everything here runs offline: the chart is rendered with the Helm
SDK bundled in ``helm-python-sdk`` (imported inside the functions, never at import time), and
nothing here imports torch, feast or kserve.
"""

from __future__ import annotations

from berth.kube.chart import CHART_DIR, render_objects, scenario_values
from berth.kube.manifests import MANIFESTS_DIR, OVERLAYS, check_manifests, render_manifests

__all__ = [
    "CHART_DIR",
    "MANIFESTS_DIR",
    "OVERLAYS",
    "check_manifests",
    "render_manifests",
    "render_objects",
    "scenario_values",
]
