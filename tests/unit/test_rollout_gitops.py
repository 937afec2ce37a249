"""GitOps: ``--emit-values`` prints each rollout step as a values change for the chart (every
key exists in ``helm/berth/values.yaml``; nothing is read from or sent to a cluster), and
``analyze --emit-template argo|flagger`` prints Berth's checks as valid PromQL (``promtool``
parses it) with the policy's thresholds, minimum samples and look counts."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from berth.cli import main
from berth.rollout.policy import RolloutPolicy
from berth.rollout.templates import queries

ROOT = Path(__file__).resolve().parents[2]
CHART_VALUES = yaml.safe_load((ROOT / "helm" / "berth" / "values.yaml").read_text())
NO_CLUSTER = ["--kubeconfig", "/nonexistent/kubeconfig"]  # any cluster access would fail


def emitted(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    assert main(["rollout", *argv, *NO_CLUSTER, "--emit-values"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("# berth rollout --emit-values:") and "helm upgrade" in text
    doc: dict[str, Any] = yaml.safe_load(text)
    return doc


def paths(doc: dict[str, Any], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = []
    for key, value in doc.items():
        here = (*prefix, key)
        out += paths(value, here) if isinstance(value, dict) else [here]
    return out


def in_chart(path: tuple[str, ...]) -> bool:
    node: Any = CHART_VALUES
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return False
        node = node[key]
    return True


def test_every_action_emits_chart_values(capsys: pytest.CaptureFixture[str]) -> None:
    canary = emitted(
        capsys, "canary", "--percent", "20", "--storage-uri", "s3://m/v2", "--via", "transformer"
    )
    assert canary == {
        "canary": {
            "enabled": True,
            "trafficPercent": 20,
            "storageUri": "s3://m/v2",
            "via": "transformer",
        }
    }
    promote = emitted(capsys, "promote", "--storage-uri", "s3://m/v2")
    assert promote == {
        "inferenceService": {"storageUri": "s3://m/v2"},
        "canary": {"enabled": False},
    }
    rollback = emitted(capsys, "rollback")
    shadow_on = emitted(capsys, "shadow", "--enable", "--storage-uri", "s3://m/v3")
    shadow_off = emitted(capsys, "shadow", "--disable")
    assert rollback == {"canary": {"enabled": False}}
    assert shadow_on == {"shadow": {"enabled": True, "storageUri": "s3://m/v3"}}
    for doc in (canary, promote, rollback, shadow_on, shadow_off):
        assert all(in_chart(p) for p in paths(doc)), doc


def test_emit_values_says_what_it_needs(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rollout", "promote", "--emit-values"]) == 1
    assert "pass --storage-uri" in capsys.readouterr().err
    assert main(["rollout", "shadow", "--enable", "--host", "h:80", "--emit-values"]) == 1
    assert "shadow.storageUri" in capsys.readouterr().err


def template(capsys: pytest.CaptureFixture[str], kind: str, policy: Path) -> str:
    argv = ["rollout", "analyze", "--emit-template", kind, "--policy", str(policy)]
    assert main([*argv, "--prometheus", "http://prom:9090"]) == 0
    return capsys.readouterr().out


POLICY = """\
primary_version: v1
canary_version: v2
window: 2m
min_samples: 300
fail_looks: 3
pass_looks: 4
max_p99_ms: 250
max_shadow_delta_p99: 0.05
"""


def test_argo_analysis_template(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "p.yaml").write_text(POLICY)
    text = template(capsys, "argo", tmp_path / "p.yaml")
    assert "Mann-Whitney" in text and "Left out" in text  # the comment on what PromQL lacks
    (doc,) = [d for d in yaml.safe_load_all(text) if d]
    assert doc["kind"] == "AnalysisTemplate"
    assert doc["spec"]["args"] == [{"name": "prometheus-address", "value": "http://prom:9090"}]
    metrics = {m["name"]: m for m in doc["spec"]["metrics"]}
    assert set(metrics) == {
        "berth-error-rate-delta",
        "berth-latency-ratio",
        "berth-canary-p99-ms",
        "berth-shadow-delta-p99",
    }
    errors = metrics["berth-error-rate-delta"]
    assert errors["failureLimit"] == 2 and errors["interval"] == "2m"  # fail_looks 3
    assert errors["failureCondition"] == "len(result) > 0 && result[0] > 0.01"
    assert errors["successCondition"] == "len(result) > 0 && result[0] <= 0.01"
    query = errors["provider"]["prometheus"]["query"]
    assert ">= 300" in query and 'model_version="v2"' in query and "[2m]" in query
    assert "> 2" in metrics["berth-latency-ratio"]["provider"]["prometheus"]["query"]


def test_flagger_metric_templates(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "p.yaml").write_text(POLICY)
    text = template(capsys, "flagger", tmp_path / "p.yaml")
    docs = [d for d in yaml.safe_load_all(text) if d]
    assert {d["kind"] for d in docs} == {"MetricTemplate"} and len(docs) == 4
    assert all(d["spec"]["provider"]["address"] == "http://prom:9090" for d in docs)
    analysis = "\n".join(
        line[2:] for line in text.splitlines() if line.startswith("# ") and "Put this" not in line
    )
    snippet = yaml.safe_load(analysis[analysis.index("spec:") :])
    checks = snippet["spec"]["analysis"]
    assert checks["threshold"] == 3 and checks["interval"] == "2m"
    limits = {m["name"]: m["thresholdRange"]["max"] for m in checks["metrics"]}
    assert limits == {
        "berth-error-rate-delta": 0.01,
        "berth-latency-ratio": 1.2,
        "berth-canary-p99-ms": 250,
        "berth-shadow-delta-p99": 0.05,
    }


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
def test_every_query_is_valid_promql(tmp_path: Path) -> None:
    """``promtool check rules`` parses each query as a recording rule's expression."""
    policy = RolloutPolicy(max_p99_ms=250, max_shadow_delta_p99=0.05)
    rules = [
        {"record": f"berth:check:{i}", "expr": q}
        for i, (q, _) in enumerate(queries(policy, "v1", "v2").values())
    ]
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "berth", "rules": rules}]}))
    done = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True)
    assert done.returncode == 0, done.stdout.decode() + done.stderr.decode()
