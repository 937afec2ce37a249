"""The cluster's runtime rules (tests/k8s/cluster_rules.py and cluster_rules_platform.py)
against every rendered scenario and the kustomize builds, and each rule against a hand-built
object that breaks it."""

from __future__ import annotations

import copy
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from berth.kube.chart import (
    CHART_DIR,
    CLUSTER_API_VERSIONS,
    MONITORING_API,
    render_objects,
    scenario_api_versions,
    scenario_values,
    scenarios,
)
from tests.k8s import cluster_rules as rules
from tests.k8s import cluster_rules_platform as platform

pytestmark = pytest.mark.k8s

Obj = dict[str, Any]
IsvcRule = Callable[[Obj], list[str]]
ISVC_RULES: dict[str, IsvcRule] = {
    "probe-protocol": rules.probe_protocol_violations,
    "kserve-canary-webhook": rules.kserve_canary_violations,
    "canary-sees-traffic": rules.canary_traffic_violations,
    "hpa-cpu-target": rules.hpa_target_violations,
}


def isvcs(objects: list[Obj]) -> list[Obj]:
    return [o for o in objects if o["kind"] == "InferenceService"]


# -- every scenario follows every rule ----------------------------------------------------------


@pytest.mark.parametrize("rule", sorted(ISVC_RULES))
def test_every_scenario_follows_the_inference_service_rules(
    rule: str, rendered: dict[str, list[Obj]]
) -> None:
    found = [
        f"{scenario}: {v}"
        for scenario, objects in rendered.items()
        for isvc in isvcs(objects)
        for v in ISVC_RULES[rule](isvc)
    ]
    assert found == []


def test_every_podmonitor_scrapes_one_target_per_pod(rendered: dict[str, list[Obj]]) -> None:
    found = [
        f"{s}: {v}"
        for s, objects in rendered.items()
        for v in platform.podmonitor_violations(objects)
    ]
    assert found == []
    assert any(o["kind"] == "PodMonitor" for o in rendered["default"])


def test_every_scenario_renders_only_what_its_cluster_serves(
    rendered: dict[str, list[Obj]],
) -> None:
    for scenario, objects in rendered.items():
        apis = set(scenario_api_versions(scenario))
        assert platform.missing_api_violations(objects, apis) == [], scenario
    # Without the Prometheus Operator's API no monitoring object renders.
    kinds = {o["kind"] for o in render_objects({}, api_versions=())}
    assert not kinds & {"PodMonitor", "PrometheusRule"}, kinds
    assert "InferenceService" in kinds


def test_kustomize_base_needs_no_prometheus_operator(kustomized: dict[str, list[Obj]]) -> None:
    apis = {"serving.kserve.io/v1beta1"}
    for name in ("base", "overlays/knative", "overlays/standard"):
        assert platform.missing_api_violations(kustomized[name], apis) == [], name


def _chart_at(tmp_path: Path, version: str) -> Path:
    """A copy of the chart as another release of it (version and appVersion bumped)."""
    chart = Path(shutil.copytree(CHART_DIR, tmp_path / version / "berth"))
    meta = yaml.safe_load((chart / "Chart.yaml").read_text())
    meta["version"] = meta["appVersion"] = version
    (chart / "Chart.yaml").write_text(yaml.safe_dump(meta))
    return chart


def test_helm_upgrade_to_a_new_chart_version_can_patch_every_job(tmp_path: Path) -> None:
    upgraded = _chart_at(tmp_path, "9.9.9")
    for scenario in scenarios():
        values = scenario_values(scenario)
        apis = scenario_api_versions(scenario)
        before = render_objects(values, hooks=True, api_versions=apis)
        after = render_objects(values, hooks=True, api_versions=apis, chart_dir=upgraded)
        assert platform.job_upgrade_violations(before, after) == [], scenario


# -- each rule rejects a hand-built violation ----------------------------------------------------


def _isvc(mode: str, **spec: Obj) -> Obj:
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": "m", "annotations": {"serving.kserve.io/deploymentMode": mode}},
        "spec": spec,
    }


def _container(ports: list[Obj], **extra: Any) -> Obj:
    args = ["--http_port", "8080", "--grpc_port", "8081"]
    return {"name": "kserve-container", "args": args, "ports": ports, **extra}


H2C = [{"name": "h2c", "containerPort": 8081}]
HTTP = [{"name": "http1", "containerPort": 8080}]
LIVE = {"httpGet": {"path": "/v2/health/live", "port": 8080}}


def test_probe_rule_rejects_http_liveness_on_a_knative_grpc_port() -> None:
    bad = _isvc("Knative", predictor={"containers": [_container(H2C, livenessProbe=LIVE)]})
    found = rules.probe_protocol_violations(bad)
    assert found == [
        "m.predictor/kserve-container: livenessProbe httpGet reaches port 8081, which serves grpc"
    ]
    # The same probe is fine where the port is HTTP, or in Standard mode (no rewriting), and a
    # tcpSocket probe is fine on the gRPC port.
    assert (
        rules.probe_protocol_violations(
            _isvc("Knative", predictor={"containers": [_container(HTTP, livenessProbe=LIVE)]})
        )
        == []
    )
    assert (
        rules.probe_protocol_violations(
            _isvc("Standard", predictor={"containers": [_container(H2C, livenessProbe=LIVE)]})
        )
        == []
    )
    tcp = {"tcpSocket": {"port": 8081}}
    assert (
        rules.probe_protocol_violations(
            _isvc("Knative", predictor={"containers": [_container(H2C, livenessProbe=tcp)]})
        )
        == []
    )
    grpc_on_rest = {"grpc": {"port": 8080}}
    assert rules.probe_protocol_violations(
        _isvc("Standard", predictor={"containers": [_container(H2C, livenessProbe=grpc_on_rest)]})
    )


def test_knative_pod_rewrites_ports_and_probes_like_knative() -> None:
    component = {
        "containers": [_container(H2C, livenessProbe=LIVE, readinessProbe=copy.deepcopy(LIVE))]
    }
    pod = rules.knative_pod(component)
    user, queue = pod["containers"]
    assert user["ports"] == [{"name": "user-port", "containerPort": 8081}]
    assert user["livenessProbe"]["httpGet"]["port"] == 8081
    assert "readinessProbe" not in user
    assert pod["queueReadinessProbe"]["httpGet"]["port"] == 8080  # a named port is kept
    assert {"name": "queue-port", "containerPort": 8013} in queue["ports"]
    enabled = rules.knative_pod(component, multi_container_probing=True)
    assert enabled["containers"][0]["livenessProbe"]["httpGet"]["port"] == 8080


def test_canary_webhook_rule_rejects_scale_fields() -> None:
    stable = {"minReplicas": 1, "containers": [_container(HTTP)]}
    canary = {
        "name": "c",
        "minReplicas": 2,
        "maxReplicas": 4,
        "scaleMetric": "cpu",
        "scaleTarget": 70,
        "containers": [_container(HTTP)],
    }
    bad = _isvc("Standard", predictor=stable, canary=[{"trafficPercent": 10, "predictor": canary}])
    found = "\n".join(rules.kserve_canary_violations(bad))
    for field in ("maxReplicas", "scaleMetric", "scaleTarget", "minReplicas"):
        assert field in found
    knative = _isvc("Knative", predictor=stable, canary=[{"trafficPercent": 10, "predictor": {}}])
    assert "only supported in Standard" in "\n".join(rules.kserve_canary_violations(knative))
    good = {"name": "c", "minReplicas": 1, "containers": [_container(HTTP)]}
    ok = _isvc("Standard", predictor=stable, canary=[{"trafficPercent": 10, "predictor": good}])
    assert rules.kserve_canary_violations(ok) == []


def test_canary_traffic_rule_rejects_a_canary_behind_a_transformer() -> None:
    transformer = {
        "containers": [
            {"name": "t", "args": ["--predictor_host", "m-predictor.ns.svc.cluster.local:8081"]}
        ]
    }
    canary = [{"trafficPercent": 10, "predictor": {"name": "c"}}]
    bad = _isvc("Standard", predictor={}, transformer=transformer, canary=canary)
    assert rules.canary_traffic_violations(bad)
    assert rules.canary_traffic_violations(_isvc("Standard", predictor={}, canary=canary)) == []


def test_hpa_rule_rejects_a_concurrency_target_used_as_cpu_percent() -> None:
    bad = _isvc("Standard", predictor={"scaleMetric": "cpu", "scaleTarget": 32})
    assert rules.hpa_target_violations(bad) == ["m.predictor: HPA CPU target 32% of the request"]
    assert rules.hpa_target_violations(_isvc("Standard", predictor={})) == []  # KServe's 80
    assert rules.hpa_target_violations(_isvc("Knative", predictor={"scaleTarget": 32})) == []


def _monitor(endpoint: Obj) -> Obj:
    return {
        "apiVersion": MONITORING_API,
        "kind": "PodMonitor",
        "metadata": {"name": "pm"},
        "spec": {"selector": {"matchLabels": {"app": "m"}}, "podMetricsEndpoints": [endpoint]},
    }


def test_podmonitor_rule_rejects_a_port_name_knative_replaced() -> None:
    component = {"labels": {"app": "m"}, "containers": [_container(HTTP)]}
    by_name = _monitor({"port": "http1", "path": "/metrics"})
    knative = [_isvc("Knative", transformer=component), by_name]
    assert platform.podmonitor_violations(knative) == [
        "PodMonitor/pm: m.transformer gives targets on ports [], wants one on {8080}"
    ]
    assert platform.podmonitor_violations([_isvc("Standard", transformer=component), by_name]) == []
    # Knative's name for the one port, kept and pointed at the REST port, works in both.
    relabeled = _monitor(
        {
            "path": "/metrics",
            "relabelings": [
                {
                    "sourceLabels": ["__meta_kubernetes_pod_container_name"],
                    "regex": "kserve-container",
                    "action": "keep",
                },
                {
                    "sourceLabels": ["__meta_kubernetes_pod_ip"],
                    "regex": "(.+)",
                    "targetLabel": "__address__",
                    "replacement": "${1}:8080",
                    "action": "replace",
                },
            ],
        }
    )
    assert (
        platform.podmonitor_violations([_isvc("Knative", transformer=component), relabeled]) == []
    )
    assert platform.podmonitor_violations([_monitor({"port": "x"})]) == [
        "PodMonitor/pm: selects no pod"
    ]


def test_missing_api_rule_rejects_a_podmonitor_without_the_operator() -> None:
    found = platform.missing_api_violations(
        [_monitor({"port": "x"})], set(CLUSTER_API_VERSIONS) - {MONITORING_API}
    )
    assert found == ["PodMonitor/pm: monitoring.coreos.com/v1 not served"]


def test_job_rule_rejects_a_plain_job_with_versioned_template() -> None:
    job: Obj = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "b"},
        "spec": {"template": {"metadata": {"labels": {"v": "1"}}}},
    }
    newer = copy.deepcopy(job)
    newer["spec"]["template"]["metadata"]["labels"]["v"] = "2"
    assert platform.job_upgrade_violations([job], [newer]) == [
        "Job/b: upgrade changes spec.template (immutable)"
    ]
    newer["spec"]["ttlSecondsAfterFinished"] = 60
    assert len(platform.job_upgrade_violations([job], [newer])) == 2
    newer["metadata"]["annotations"] = {"helm.sh/hook": "pre-install,pre-upgrade"}
    assert platform.job_upgrade_violations([job], [newer]) == []


def test_helm_test_pod_passes_the_authorization_policy(rendered: dict[str, list[Obj]]) -> None:
    for scenario, objects in rendered.items():
        assert platform.helm_test_admission_violations(objects) == [], scenario
    assert any(o["kind"] == "AuthorizationPolicy" for o in rendered["auth"])


def test_istio_rule_rejects_a_policy_without_the_test_pod() -> None:
    pod: Obj = {
        "kind": "Pod",
        "metadata": {"name": "t", "namespace": "ns", "annotations": {"helm.sh/hook": "test"}},
        "spec": {"serviceAccountName": "sa", "containers": [{"args": ["curl http://x/v1/p"]}]},
    }
    health = {"to": [{"operation": {"methods": ["GET"], "paths": ["/v2/health/live"]}}]}
    caller = {"from": [{"source": {"principals": ["cluster.local/ns/a/sa/b"]}}]}
    policy: Obj = {
        "kind": "AuthorizationPolicy",
        "metadata": {"name": "p"},
        "spec": {"action": "ALLOW", "rules": [caller, health]},
    }
    assert platform.helm_test_admission_violations([pod, policy]) == [
        "AuthorizationPolicy/p refuses the helm test pod (POST /v1/p)"
    ]
    policy["spec"]["rules"].append({"from": [{"source": {"principals": ["*/sa/sa"]}}]})
    assert platform.helm_test_admission_violations([pod, policy]) == []


def test_grpc_liveness_probe_by_default_tcp_socket_on_request() -> None:
    """On the gRPC hop's h2c-only port, a Kubernetes grpc: probe (the containers'
    grpc.health.v1) by default; predictor.probes.grpcPortProbe=tcpSocket for older images. The
    probe rule accepts both."""
    for probe, expected in (
        ({}, {"grpc": {"port": 8081}}),
        ("tcpSocket", {"tcpSocket": {"port": 8081}}),
    ):
        values: dict[str, Any] = {"transformer": {"predictorProtocol": "grpc-v2"}}
        if probe:
            values["predictor"] = {"probes": {"grpcPortProbe": probe}}
        main = next(
            o for o in isvcs(render_objects(values)) if o["metadata"]["name"] == "driver-ranking"
        )
        liveness = main["spec"]["predictor"]["containers"][0]["livenessProbe"]
        assert {k: liveness[k] for k in expected} == expected, liveness
        assert rules.probe_protocol_violations(main) == []


def test_default_install_survives_a_node_drain(rendered: dict[str, list[Obj]]) -> None:
    """Two replicas and a PDB by default (and in every scenario that keeps the PDBs on)."""
    for scenario, objects in rendered.items():
        if any(o["kind"] == "PodDisruptionBudget" for o in objects):
            assert platform.drain_violations(objects) == [], scenario
    one = render_objects({"predictor": {"minReplicas": 1}})
    assert platform.drain_violations(one) == [
        "driver-ranking.predictor: a drain may evict all 1 pod(s)"
    ]
    none = render_objects({"podDisruptionBudget": {"enabled": False}})
    assert len(platform.drain_violations(none)) == 2
