"""checkov (its own venv: $BERTH_CHECKOV or .venv-checkov) over the chart rendered for every
ci/ scenario, over manifests/ and over each kustomize build: 0 failed checks, and every
skipped check listed in .checkov.yaml with a reason. checkov's helm framework needs a helm
binary, so the chart is rendered by helm-python-sdk and scanned as plain Kubernetes YAML."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from berth.kube.manifests import MANIFESTS_DIR, dump

pytestmark = pytest.mark.k8s

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / ".checkov.yaml"
Obj = dict[str, Any]
CONTROL: Obj = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "control", "namespace": "control"},
    "spec": {
        "selector": {"matchLabels": {"app": "control"}},
        "template": {
            "metadata": {"labels": {"app": "control"}},
            "spec": {
                "containers": [
                    {
                        "name": "c",
                        "image": "example.com/c:1",
                        "securityContext": {"privileged": True, "allowPrivilegeEscalation": True},
                    }
                ]
            },
        },
    },
}


def skipped_checks() -> dict[str, str]:
    """Check id -> reason, from the ``- ID  # reason`` lines of .checkov.yaml."""
    import yaml

    config = yaml.safe_load(CONFIG.read_text())
    reasons = dict(re.findall(r"^\s*-\s*(CKV2?_\w+)\s*#\s*(.+?)\s*$", CONFIG.read_text(), re.M))
    assert set(config.get("skip-check") or []) == set(reasons), "a skip without a reason"
    return reasons


def test_every_skip_has_a_reason() -> None:
    for check, reason in skipped_checks().items():
        assert len(reason.split()) >= 5, check


def _write(folder: Path, objects: list[Obj]) -> None:
    folder.mkdir(parents=True)
    for i, obj in enumerate(objects):
        name = f"{i:02d}-{obj['kind'].lower()}-{obj['metadata']['name']}.yaml"
        (folder / name).write_text(dump(obj))


def test_checkov_passes(
    checkov: str,
    rendered: dict[str, list[Obj]],
    kustomized: dict[str, list[Obj]],
    tmp_path: Path,
) -> None:
    scan = tmp_path / "scan"
    for scenario, objects in rendered.items():
        _write(scan / "chart" / scenario, objects)
    for name, objects in kustomized.items():
        _write(scan / "kustomize" / name.replace("/", "-"), objects)
    shutil.copytree(MANIFESTS_DIR, scan / "manifests")
    # A control in the same run: checkov must fail it, so a scan that checks nothing fails.
    _write(scan / "control", [CONTROL])
    out = subprocess.run(
        [checkov, "--config-file", str(CONFIG), "-d", str(scan), "-o", "json"],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert out.stdout.strip(), f"checkov printed nothing (rc {out.returncode}):\n{out.stderr}"
    reports = json.loads(out.stdout)
    reports = [reports] if isinstance(reports, dict) else reports
    assert [r["check_type"] for r in reports] == ["kubernetes"]
    summary = reports[0]["summary"]
    failed = [
        f"{c['check_id']} {c['check_name']}: {c['resource']} ({c['file_path']})"
        for c in reports[0]["results"]["failed_checks"]
        if not c["file_path"].startswith("/control/")
    ]
    assert failed == [], "\n".join(failed)
    control = {
        c["check_id"]
        for c in reports[0]["results"]["failed_checks"]
        if c["file_path"].startswith("/control/")
    }
    assert {"CKV_K8S_16", "CKV_K8S_20", "CKV_K8S_22"} <= control, control
    assert summary["parsing_errors"] == 0
    assert summary["passed"] > 1000 and summary["resource_count"] > 100, summary
    # Inline suppressions would bypass the config: there must be none.
    assert summary["skipped"] == 0
    assert reports[0]["results"].get("skipped_checks", []) == []
    assert set(skipped_checks()) == {"CKV_K8S_8", "CKV_K8S_9", "CKV_K8S_15", "CKV_K8S_43"}
    assert out.returncode == 1  # the control's failures
