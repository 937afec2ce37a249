"""What checkov cannot see: the containers inside InferenceServices (and, with them, every other
pod the chart renders) run restricted, with probes, requests and limits; traffic, rollout and
secret wiring follow the containers' contracts."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from berth.kube.chart import render_objects

pytestmark = pytest.mark.k8s

Obj = dict[str, Any]
PodSpec = tuple[str, Obj, bool]  # where, pod spec (or InferenceService component), long-running


def pod_specs(objects: list[Obj]) -> Iterator[PodSpec]:
    """Every pod spec: InferenceService components (predictor, each spec.canary[] predictor,
    transformer), Deployments, CronJobs, Jobs and Pods."""
    for obj in objects:
        kind, name, spec = obj["kind"], obj["metadata"]["name"], obj.get("spec") or {}
        if kind == "InferenceService":
            for part in ("predictor", "transformer"):
                if part in spec:
                    yield f"{name}.{part}", spec[part], True
            for i, entry in enumerate(spec.get("canary") or []):
                yield f"{name}.canary[{i}]", entry["predictor"], True
        elif kind == "Deployment":
            yield f"Deployment/{name}", spec["template"]["spec"], True
        elif kind == "CronJob":
            yield f"CronJob/{name}", spec["jobTemplate"]["spec"]["template"]["spec"], False
        elif kind == "Job":
            yield f"Job/{name}", spec["template"]["spec"], False
        elif kind == "Pod":
            yield f"Pod/{name}", spec, False


def env(container: Obj) -> dict[str, Obj]:
    return {e["name"]: e for e in container.get("env") or []}


def isvcs(objects: list[Obj]) -> dict[str, Obj]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == "InferenceService"}


def test_every_container_runs_restricted(rendered: dict[str, list[Obj]]) -> None:
    seen = 0
    for scenario, objects in rendered.items():
        for where, pod, _ in pod_specs(objects):
            pod_context = pod.get("securityContext") or {}
            for container in pod["containers"]:
                at = f"{scenario}: {where}/{container['name']}"
                ctx = container.get("securityContext") or {}
                assert ctx.get("runAsNonRoot") is True, at
                assert ctx.get("runAsUser", pod_context.get("runAsUser", 0)) >= 10000, at
                assert ctx.get("allowPrivilegeEscalation") is False, at
                assert ctx.get("capabilities", {}).get("drop") == ["ALL"], at
                assert ctx.get("readOnlyRootFilesystem") is True, at
                seccomp = ctx.get("seccompProfile") or pod_context.get("seccompProfile") or {}
                assert seccomp.get("type") == "RuntimeDefault", at
                assert "privileged" not in ctx or ctx["privileged"] is False, at
                seen += 1
    assert seen > 30


def test_writable_paths_are_emptydirs_and_mounts_resolve(rendered: dict[str, list[Obj]]) -> None:
    for scenario, objects in rendered.items():
        for where, pod, _ in pod_specs(objects):
            volumes = {v["name"]: v for v in pod.get("volumes") or []}
            for container in pod["containers"]:
                for mount in container.get("volumeMounts") or []:
                    at = f"{scenario}: {where}: {mount['mountPath']}"
                    volume = volumes[mount["name"]]
                    writable = not mount.get("readOnly")
                    if writable:
                        assert "emptyDir" in volume or "persistentVolumeClaim" in volume, at
                    else:
                        assert "configMap" in volume or "secret" in volume, at
            if where.startswith("driver-ranking"):
                mounts = {m["mountPath"] for c in pod["containers"] for m in c["volumeMounts"]}
                assert "/tmp" in mounts, where


def test_every_container_has_requests_and_limits(rendered: dict[str, list[Obj]]) -> None:
    for scenario, objects in rendered.items():
        for where, pod, _ in pod_specs(objects):
            for container in pod["containers"]:
                resources = container.get("resources") or {}
                for kind in ("requests", "limits"):
                    for resource in ("cpu", "memory"):
                        assert resource in resources.get(kind, {}), (scenario, where, kind)


def test_long_running_containers_have_probes(rendered: dict[str, list[Obj]]) -> None:
    for scenario, objects in rendered.items():
        for where, pod, long_running in pod_specs(objects):
            if not long_running:
                continue
            for container in pod["containers"]:
                at = f"{scenario}: {where}"
                assert "livenessProbe" in container and "readinessProbe" in container, at
                if where.startswith("driver-ranking"):
                    # Knative rewrites the liveness probe to the one declared port: on the
                    # gRPC-only h2c port it is a grpc: probe of grpc.health.v1 (by default) or
                    # a tcpSocket probe (tests/k8s/cluster_rules.py).
                    ports = [p["name"] for p in container["ports"]]
                    if ports == ["h2c"]:
                        probe = container["livenessProbe"]
                        assert probe.get("grpc", probe.get("tcpSocket")) == {"port": 8081}, at
                    else:
                        assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
                    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
                    assert container["startupProbe"]["httpGet"]["path"] == "/v2/health/live"
                    # import feast (~6 s) and the warm-up must fit the start-up budget.
                    startup = container["startupProbe"]
                    assert startup["periodSeconds"] * startup["failureThreshold"] >= 30, at


def test_inference_services_autoscale_and_pin_images(rendered: dict[str, list[Obj]]) -> None:
    for scenario, objects in rendered.items():
        for where, component, _ in pod_specs(objects):
            if not where.startswith("driver-ranking"):
                continue
            at = f"{scenario}: {where}"
            for field in ("minReplicas", "maxReplicas", "scaleMetric", "scaleTarget"):
                assert field in component, at
            assert component["minReplicas"] <= component["maxReplicas"], at
            assert component.get("automountServiceAccountToken") is False, at
            container = component["containers"][0]
            assert container["name"] == "kserve-container", at
            tag = container["image"].rpartition(":")[2]
            assert tag not in ("", "latest"), at


def test_ports_per_mode(rendered: dict[str, list[Obj]]) -> None:
    def ports(isvc: Obj, part: str) -> list[tuple[str, int]]:
        container = isvc["spec"][part]["containers"][0]
        return [(p["name"], p["containerPort"]) for p in container["ports"]]

    knative = isvcs(rendered["default"])["driver-ranking"]
    # Knative: one port per container; the predictor's is what the transformer calls: REST
    # (the default), declared http1.
    assert ports(knative, "predictor") == [("http1", 8080)]
    assert ports(knative, "transformer") == [("http1", 8080)]
    assert knative["spec"]["predictor"]["scaleMetric"] == "concurrency"
    # Over gRPC the Knative predictor declares its h2c port instead.
    grpc = render_objects({"transformer": {"predictorProtocol": "grpc-v2"}})
    assert ports(isvcs(grpc)["driver-ranking"], "predictor") == [("h2c", 8081)]
    standard = isvcs(rendered["standard"])["driver-ranking"]
    assert ports(standard, "predictor") == [("http1", 8080), ("h2c", 8081)]
    assert standard["metadata"]["annotations"]["serving.kserve.io/autoscalerClass"] == "hpa"
    assert standard["spec"]["predictor"]["scaleMetric"] == "cpu"


def test_transformer_contract(rendered: dict[str, list[Obj]]) -> None:
    for scenario, objects in rendered.items():
        main = isvcs(objects)["driver-ranking"]
        transformer = main["spec"]["transformer"]["containers"][0]
        args = transformer["args"]
        host = args[args.index("--predictor_host") + 1]
        knative = main["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Knative"
        protocol = args[args.index("--predictor_protocol") + 1]
        port = "8081" if protocol == "grpc-v2" and not knative else "80"
        assert host == f"driver-ranking-predictor.berth.svc.cluster.local:{port}", scenario
        assert protocol == ("grpc-v2" if scenario == "knative-grpc-default" else "v2"), scenario
        variables = env(transformer)
        assert variables["BERTH_TRANSFORMER_FEATURE_REPO"]["value"] == "/app/feature_repo"
        yaml_path = variables["BERTH_TRANSFORMER_FEATURE_STORE_YAML"]["value"]
        mounts = {m["mountPath"] for m in transformer["volumeMounts"]}
        assert yaml_path.rpartition("/")[0] in mounts
        assert variables["BERTH_TRANSFORMER_MAX_INFLIGHT"]["value"] == "64"
        redis = variables["REDIS_CONNECTION_STRING"]
        if scenario == "dev":
            assert redis["value"].endswith(":6379") and "password" not in redis["value"]
        else:
            ref = redis["valueFrom"]["secretKeyRef"]
            assert ref["key"] == "connection-string" and ref["name"], scenario


def test_no_secret_values_anywhere(rendered: dict[str, list[Obj]]) -> None:
    for scenario, objects in rendered.items():
        assert all(o["kind"] != "Secret" for o in objects), scenario
        text = json.dumps(objects).lower()
        assert "password=" not in text.replace("password=...", ""), scenario


def test_shadow_is_a_second_predictor_the_transformer_mirrors_to(
    rendered: dict[str, list[Obj]],
) -> None:
    found = isvcs(rendered["shadow"])
    shadow = found["driver-ranking-shadow"]
    assert set(shadow["spec"]) == {"predictor"}
    predictor = shadow["spec"]["predictor"]
    assert env(predictor["containers"][0])["STORAGE_URI"]["value"].endswith("/v2")
    assert predictor["labels"]["berth.io/variant"] == "shadow"
    transformer = env(found["driver-ranking"]["spec"]["transformer"]["containers"][0])
    assert transformer["BERTH_TRANSFORMER_SHADOW_HOST"]["value"] == (
        "driver-ranking-shadow-predictor.berth.svc.cluster.local:80"
    )
    assert transformer["BERTH_TRANSFORMER_SHADOW_QUEUE_SIZE"]["value"] == "2000"


def test_canaries_per_mode(rendered: dict[str, list[Obj]]) -> None:
    knative = isvcs(rendered["canary"])["driver-ranking"]["spec"]
    assert knative["predictor"]["canaryTrafficPercent"] == 20
    # Knative keeps the latest spec: the predictor holds the new model, the transformer's
    # metadata stays the primary's.
    assert env(knative["predictor"]["containers"][0])["STORAGE_URI"]["value"].endswith("/v2")
    # Standard: the split is the transformer's (KServe's spec.canary[] weights never reach the
    # predictor Service the transformer calls), to a predictor-only InferenceService.
    standard = isvcs(rendered["canary-standard"])
    assert "canary" not in standard["driver-ranking"]["spec"]
    canary = standard["driver-ranking-canary-v2"]["spec"]["predictor"]
    assert env(canary["containers"][0])["STORAGE_URI"]["value"].endswith("/v2")
    variables = env(standard["driver-ranking"]["spec"]["transformer"]["containers"][0])
    assert variables["BERTH_TRANSFORMER_CANARY_PERCENT"]["value"] == "10"
    assert variables["BERTH_TRANSFORMER_CANARY_HOST"]["value"] == (  # REST: Service port 80
        "driver-ranking-canary-v2-predictor.berth.svc.cluster.local:80"
    )
    with pytest.raises(Exception, match=re.escape("canary.via=kserve needs deploymentMode")):
        render_objects(
            {
                "inferenceService": {"deploymentMode": "Standard"},
                "canary": {"enabled": True, "via": "kserve", "storageUri": "s3://b/v2"},
            }
        )
    by_transformer = isvcs(rendered["transformer-canary"])
    assert "driver-ranking-canary" in by_transformer
    variables = env(by_transformer["driver-ranking"]["spec"]["transformer"]["containers"][0])
    assert variables["BERTH_TRANSFORMER_CANARY_PERCENT"]["value"] == "5"
    assert variables["BERTH_TRANSFORMER_CANARY_HOST"]["value"].startswith(
        "driver-ranking-canary-predictor."
    )


def _selects(selector: Obj, labels: Obj) -> bool:
    return all(labels.get(k) == v for k, v in (selector.get("matchLabels") or {}).items())


def test_policies_select_the_pods_they_guard(rendered: dict[str, list[Obj]]) -> None:
    for scenario, objects in rendered.items():
        pod_labels: dict[str, Obj] = {}
        for obj in objects:
            if obj["kind"] == "InferenceService":
                for part in ("predictor", "transformer"):
                    if part in obj["spec"]:
                        pod_labels[f"{obj['metadata']['name']}.{part}"] = obj["spec"][part][
                            "labels"
                        ]
            elif obj["kind"] in ("Deployment", "Job"):
                pod_labels[obj["metadata"]["name"]] = obj["spec"]["template"]["metadata"]["labels"]
            elif obj["kind"] == "CronJob":
                template = obj["spec"]["jobTemplate"]["spec"]["template"]
                pod_labels[obj["metadata"]["name"]] = template["metadata"]["labels"]
        policies = [o for o in objects if o["kind"] == "NetworkPolicy"]
        for where, labels in pod_labels.items():
            guarded = [p for p in policies if _selects(p["spec"]["podSelector"], labels)]
            assert len(guarded) == 1, f"{scenario}: {where} is guarded by {len(guarded)}"
            assert set(guarded[0]["spec"]["policyTypes"]) == {"Ingress", "Egress"}
        for obj in objects:
            if obj["kind"] in ("PodDisruptionBudget", "PodMonitor"):
                matched = [
                    w for w, lab in pod_labels.items() if _selects(obj["spec"]["selector"], lab)
                ]
                assert matched, (
                    f"{scenario}: {obj['kind']}/{obj['metadata']['name']} selects nothing"
                )


def test_standard_predictor_admits_only_the_transformer(rendered: dict[str, list[Obj]]) -> None:
    objects = rendered["standard"]
    policy = next(
        o
        for o in objects
        if o["metadata"]["name"] == "berth-predictor" and o["kind"] == "NetworkPolicy"
    )
    sources = [peer for rule in policy["spec"]["ingress"] for peer in rule["from"]]
    components = {
        p["podSelector"]["matchLabels"].get("app.kubernetes.io/component")
        for p in sources
        if "podSelector" in p
    }
    assert components == {"transformer"}
    assert all("podSelector" in p or "namespaceSelector" in p for p in sources)


def test_auth_admits_only_named_service_accounts(rendered: dict[str, list[Obj]]) -> None:
    assert all(o["kind"] != "AuthorizationPolicy" for o in rendered["default"])
    policy = next(o for o in rendered["auth"] if o["kind"] == "AuthorizationPolicy")
    assert policy["spec"]["action"] == "ALLOW"
    principals = policy["spec"]["rules"][0]["from"][0]["source"]["principals"]
    assert principals == [
        "cluster.local/ns/rides/sa/dispatch-api",
        "cluster.local/ns/rides/sa/pricing-worker",
    ]
    # The chart's own helm test pod runs as the release's ServiceAccount: it may predict.
    test_rule = policy["spec"]["rules"][1]
    assert test_rule["from"][0]["source"]["principals"] == ["cluster.local/ns/berth/sa/berth"]
    assert test_rule["to"][0]["operation"] == {
        "methods": ["POST"],
        "paths": ["/v1/models/driver-ranking:predict"],
    }
    test_pod = next(o for o in rendered["auth"] if o["kind"] == "Pod")
    assert test_pod["spec"]["serviceAccountName"] == "berth"
    assert "/v1/models/driver-ranking:predict" in test_pod["spec"]["containers"][0]["args"][0]
    open_paths = policy["spec"]["rules"][2]["to"][0]["operation"]
    assert open_paths["methods"] == ["GET"]


def test_materialization_runs_the_feast_cli(rendered: dict[str, list[Obj]]) -> None:
    cronjob = next(o for o in rendered["default"] if o["kind"] == "CronJob")
    pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    script = pod["containers"][0]["args"][0]
    # The image's repo is read-only: Feast works on a copy; it never applies on a schedule.
    assert "cp -R /app/feature_repo /tmp/feature_repo" in script
    assert 'materialize-incremental "$(date -u +%Y-%m-%dT%H:%M:%S)"' in script
    assert " apply" not in script
    mounts = {m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
    assert "/app/feature_repo/data" not in mounts  # nothing hides the image's data
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    assert pod["containers"][0]["image"].startswith("ghcr.io/berth-serving/berth-transformer:")


def test_every_pod_skips_service_links(rendered: dict[str, list[Obj]]) -> None:
    """No Service-link env vars: they leak other Services' addresses into every pod and slow
    pod start in busy namespaces."""
    for scenario, objects in rendered.items():
        for where, pod, _ in pod_specs(objects):
            assert pod.get("enableServiceLinks") is False, f"{scenario}: {where}"


def test_platform_knobs_reach_the_pods() -> None:
    spread = [
        {
            "maxSkew": 1,
            "topologyKey": "topology.kubernetes.io/zone",
            "whenUnsatisfiable": "ScheduleAnyway",
        }
    ]
    knobs = {
        "podAnnotations": {"example.com/team": "ranking"},
        "podLabels": {"team": "ranking"},
        "priorityClassName": "serving-high",
        "topologySpreadConstraints": spread,
        "containerConcurrency": 8,
        "timeout": 30,
    }
    values = {
        "predictor": knobs,
        "transformer": knobs,
        "imagePullSecrets": [{"name": "registry"}],
        "serviceAccount": {"annotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/r"}},
    }
    objects = render_objects(values)
    main = isvcs(objects)["driver-ranking"]["spec"]
    for part in ("predictor", "transformer"):
        component = main[part]
        assert component["annotations"]["example.com/team"] == "ranking"
        assert component["labels"]["team"] == "ranking"
        assert component["labels"]["app.kubernetes.io/component"] == part  # selectors win
        assert component["priorityClassName"] == "serving-high"
        assert component["topologySpreadConstraints"] == spread
        assert component["containerConcurrency"] == 8 and component["timeout"] == 30
        assert component["imagePullSecrets"] == [{"name": "registry"}]
    assert "checksum/config" in main["transformer"]["annotations"]
    account = next(o for o in objects if o["kind"] == "ServiceAccount")
    assert account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].endswith(":role/r")
    # Defaults: two replicas of each, the Standard HPA on 70% CPU (not Knative's targets).
    default = isvcs(render_objects({}))["driver-ranking"]["spec"]
    assert default["predictor"]["minReplicas"] == default["transformer"]["minReplicas"] == 2
    standard = isvcs(render_objects({"inferenceService": {"deploymentMode": "Standard"}}))
    for part in ("predictor", "transformer"):
        assert standard["driver-ranking"]["spec"][part]["scaleTarget"] == 70
