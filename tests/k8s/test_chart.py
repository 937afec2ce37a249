"""helm/berth through the real Helm SDK (helm-python-sdk): every ci/ scenario renders and lints
clean, lint does report errors, and values.schema.json refuses what it should."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from berth.kube.chart import CHART_DIR, lint, render_objects, render_templates, scenarios

pytestmark = pytest.mark.k8s

SCENARIOS = scenarios()
KUBE_VERSION = "v1.32.0"


def test_every_ci_scenario_is_a_values_file() -> None:
    expected = {
        "default",
        "standard",
        "canary",
        "canary-standard",
        "transformer-canary",
        "shadow",
        "external-redis",
        "auth",
        "dev",
        "observability",
    }
    assert expected <= set(SCENARIOS)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_scenario_renders_and_lints_clean(scenario: str) -> None:
    values = yaml.safe_load((CHART_DIR / "ci" / f"{scenario}-values.yaml").read_text()) or {}
    findings = lint(values, kube_version=KUBE_VERSION)
    # Strict lint: warnings count too; only info (1) such as "icon is recommended" may remain.
    assert [m for m in findings if m["severity"] >= 2] == []
    objects = render_objects(values)
    assert any(o["kind"] == "InferenceService" for o in objects)


def _broken_chart(tmp_path: Path, template: str) -> Path:
    chart = Path(shutil.copytree(CHART_DIR, tmp_path / "berth"))
    (chart / "templates" / "broken.yaml").write_text(template)
    return chart


@pytest.mark.parametrize(
    "template",
    [
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Values.nope.missing }}\n",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Values.unclosed\n",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n   bad: : yaml\n",
    ],
    ids=["nil-value", "unclosed-action", "bad-yaml"],
)
def test_lint_reports_errors(tmp_path: Path, template: str) -> None:
    """The lint gate can fail: a broken template is an error (severity 3)."""
    findings = lint({}, chart_dir=_broken_chart(tmp_path, template))
    assert any(m["severity"] == 3 for m in findings), findings


def _schema_error(values: dict[str, Any]) -> str:
    import helm_python

    with helm_python.Chart.load(CHART_DIR) as chart:
        with pytest.raises(helm_python.HelmValuesError) as caught:
            chart.validate_schema(values)
        # helm template/install refuse them too, before rendering anything.
        with pytest.raises(helm_python.HelmError):
            chart.render(values, name="berth", namespace="berth")
    return str(caught.value)


def test_schema_accepts_the_defaults() -> None:
    import helm_python

    with helm_python.Chart.load(CHART_DIR) as chart:
        chart.validate_schema({})
        assert chart.schema is not None
        assert chart.schema["additionalProperties"] is False


def test_schema_rejects_an_unknown_key() -> None:
    assert "replicas" in _schema_error({"predictor": {"replicas": 3}})
    assert "canaryTrafficPercent" in _schema_error({"canaryTrafficPercent": 50})


def test_schema_rejects_canary_traffic_percent_150() -> None:
    """KServe's CRD leaves canaryTrafficPercent unbounded (its webhook checks); the chart
    refuses 150 itself."""
    message = _schema_error({"canary": {"enabled": True, "trafficPercent": 150}})
    assert "trafficPercent" in message and "maximum" in message


@pytest.mark.parametrize(
    ("values", "where"),
    [
        ({"predictor": {"maxReplicas": 0}}, "maxReplicas"),
        ({"transformer": {"scaleMetric": "gpu"}}, "scaleMetric"),
        ({"inferenceService": {"deploymentMode": "Serverless"}}, "deploymentMode"),
        ({"inferenceService": {"name": "Driver_Ranking"}}, "name"),
        ({"securityContext": {"runAsUser": 0}}, "runAsUser"),
        # null removes a default in Helm's coalescing: a request without memory.
        ({"predictor": {"resources": {"requests": {"memory": None}}}}, "memory"),
        ({"predictor": {"image": {"digest": "latest"}}}, "digest"),
        (
            {"inferenceService": {"deploymentMode": "Standard"}, "transformer": {"minReplicas": 0}},
            "minReplicas",
        ),
        ({"networkPolicy": {"redisPorts": [70000]}}, "redisPorts"),
        ({"auth": {"allowedServiceAccounts": ["no-namespace"]}}, "allowedServiceAccounts"),
    ],
)
def test_schema_rejects_out_of_range_values(values: dict[str, Any], where: str) -> None:
    assert where in _schema_error(values)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"predictor": {"scaleMetric": "cpu"}}, "needs deploymentMode Standard"),
        (
            {
                "inferenceService": {"deploymentMode": "Standard"},
                "transformer": {"scaleMetric": "rps"},
            },
            "needs deploymentMode Knative",
        ),
        ({"canary": {"enabled": True}}, "canary.storageUri"),
        ({"shadow": {"enabled": True}}, "shadow.storageUri"),
        ({"predictor": {"minReplicas": 5, "maxReplicas": 2}}, "exceeds"),
        ({"auth": {"enabled": True}}, "allowedServiceAccounts"),
        ({"terminationGracePeriodSeconds": 10, "shutdownDelaySeconds": 8}, "must exceed"),
    ],
)
def test_templates_refuse_inconsistent_values(values: dict[str, Any], message: str) -> None:
    import helm_python

    with pytest.raises(helm_python.HelmError, match=re.escape(message)):
        render_objects(values)


def test_values_yaml_opens_with_the_schema_header_and_comments_every_key() -> None:
    lines = (CHART_DIR / "values.yaml").read_text().splitlines()
    assert lines[0] == "# yaml-language-server: $schema=values.schema.json"
    passthrough = {"resources", "labels", "annotations", "nodeSelector", "affinity"}
    passthrough |= {"missingPolicy", "stalePolicy"}
    undocumented: list[str] = []
    skip_below: int | None = None  # inside a Kubernetes structure or a list value
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        indent = len(line) - len(line.lstrip())
        if skip_below is not None and indent > skip_below:
            continue
        skip_below = None
        match = re.match(r"^\s*([A-Za-z0-9_]+):(.*)$", line)
        assert match, f"values.yaml:{number}: unexpected line {line!r}"
        name, rest = match.groups()
        following = lines[number] if number < len(lines) else ""
        if name in passthrough or (not rest.strip() and following.lstrip().startswith("- ")):
            skip_below = indent
        if not lines[number - 2].lstrip().startswith("#"):
            undocumented.append(f"{number}: {name}")
    assert undocumented == []


def test_helpers_define_the_standard_names() -> None:
    helpers = (CHART_DIR / "templates" / "_helpers.tpl").read_text()
    for name in ("name", "fullname", "labels", "selectorLabels"):
        assert f'define "berth.{name}"' in helpers


def test_feature_store_config_change_rolls_the_pods() -> None:
    def checksums(values: dict[str, Any]) -> list[str]:
        found = []
        for obj in render_objects(values):
            if obj["kind"] == "InferenceService":
                found.append(obj["spec"]["transformer"]["annotations"]["checksum/config"])
            if obj["kind"] == "CronJob":
                template = obj["spec"]["jobTemplate"]["spec"]["template"]
                found.append(template["metadata"]["annotations"]["checksum/config"])
        return found

    before = checksums({})
    after = checksums({"featureStore": {"registry": {"cacheTtlSeconds": 5}}})
    assert len(before) == 2 and len(set(before)) == 1
    assert set(before).isdisjoint(after)
    assert checksums({"transformer": {"maxInflight": 9}}) == before


def test_notes_print_the_next_command() -> None:
    notes = render_templates({})["berth/templates/NOTES.txt"]
    assert "curl" in notes and "/v1/models/driver-ranking:predict" in notes
    assert "helm test berth" in notes
    # `kubectl run` in a "restricted" namespace: the pod it creates must meet the profile.
    overrides = json.loads(re.search(r"--overrides='(.+?)'", notes).group(1))  # type: ignore[union-attr]
    pod = overrides["spec"]
    container = pod["containers"][0]
    assert container["name"] == "berth-client" and container["args"][0] == "curl"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}


def test_helm_test_pod_sends_one_inference_with_a_pinned_image() -> None:
    objects = render_objects({}, hooks=True)
    pods = [o for o in objects if o["kind"] == "Pod"]
    assert len(pods) == 1
    pod = pods[0]
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    image = pod["spec"]["containers"][0]["image"]
    tag = image.rpartition(":")[2]
    assert tag and tag != "latest" and re.match(r"^\d+\.\d+\.\d+", tag), image
    script = " ".join(pod["spec"]["containers"][0]["args"])
    assert (
        "driver-ranking-transformer.berth.svc.cluster.local/v1/models/driver-ranking:predict"
        in script
    )
    assert "predictions" in script
    # Not part of what kubectl applies.
    assert all(o["kind"] != "Pod" for o in render_objects({}))
