"""The cluster's runtime rules that no schema shows, re-implemented from upstream source:
Knative's and KServe's here, the platform's (Prometheus Operator, Helm, Istio, disruption
budgets) in cluster_rules_platform.py.

Each rule is a function over rendered objects that returns its violations (empty: the objects
follow the rule). None of them knows Berth's chart: they re-apply what the cited upstream code
does to *any* object, so tests/k8s/test_cluster_rules.py checks every rendered scenario with
them and feeds each one a hand-built violating object it must reject.

Upstream commits read (``fetch``): knative/serving 98e5ef90, kserve/kserve aaac4e29,
prometheus-operator/prometheus-operator 6adcebc5, helm/helm e9b85e4d.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

Obj = dict[str, Any]

# -- shared: what a KServe component becomes -------------------------------------------------

KNATIVE = "Knative"
USER_PORT_NAME = "user-port"
"""knative/serving pkg/apis/serving/v1/revision_helpers.go: ``UserPortName``."""
DEFAULT_USER_PORT = 8080
"""knative/serving pkg/apis/serving/v1/revision_helpers.go: ``DefaultUserPort``."""
QUEUE_PROXY_PORTS = {"http-autometric": 9090, "http-usermetric": 9091, "https-port": 8112}
"""knative/serving pkg/reconciler/revision/resources/queue.go: ``queueNonServingPorts`` and
``queueHTTPSPort``; the serving port ``queue-port`` is 8012 (HTTP/1) or 8013 (h2c)."""


def deployment_mode(isvc: Obj) -> str:
    annotations = (isvc.get("metadata") or {}).get("annotations") or {}
    return str(annotations.get("serving.kserve.io/deploymentMode", KNATIVE))


def components(isvc: Obj) -> Iterator[tuple[str, Obj]]:
    """(where, component) for the predictor, the transformer and each spec.canary[] predictor."""
    spec = isvc.get("spec") or {}
    name = isvc["metadata"]["name"]
    for part in ("predictor", "transformer"):
        if part in spec:
            yield f"{name}.{part}", spec[part]
    for i, entry in enumerate(spec.get("canary") or []):
        yield f"{name}.canary[{i}]", entry.get("predictor") or {}


def _arg(args: list[str], flag: str, default: int) -> int:
    return int(args[args.index(flag) + 1]) if flag in args else default


def served_protocols(container: Obj) -> dict[int, str]:
    """Port -> protocol a KServe ModelServer container answers on: REST (HTTP/1.1) on
    ``--http_port`` (default 8080), gRPC (HTTP/2 only) on ``--grpc_port`` (default 8081), as
    kserve/kserve python/kserve/kserve/model_server.py parses them."""
    args = [str(a) for a in container.get("args") or []]
    return {_arg(args, "--http_port", 8080): "http", _arg(args, "--grpc_port", 8081): "grpc"}


def _serving_container_index(pod: Obj) -> int | None:
    """knative/serving deploy.go ``BuildUserContainers``: the container with ports (or the only
    one) is the serving container."""
    containers = pod.get("containers") or []
    for i, container in enumerate(containers):
        if container.get("ports") or len(containers) == 1:
            return i
    return None


def knative_pod(component: Obj, multi_container_probing: bool = False) -> Obj:
    """The pod Knative runs for a Revision with this pod spec (knative/serving
    pkg/reconciler/revision/resources/deploy.go ``makeServingContainer``, ``makeContainer``,
    ``rewriteUserLivenessProbe``; queue.go ``makeQueueContainer``,
    ``applyReadinessProbeDefaults``). ``multi-container-probing`` is ``Disabled`` by default
    (pkg/apis/config/features.go ``defaultFeaturesConfig``).

    The serving container's ports are replaced by one ``user-port`` (the first declared port);
    its liveness probe's httpGet/tcpSocket port is rewritten to that port unless the feature is
    on and a port is given; its readiness probe moves to queue-proxy, which probes the port the
    probe names (else the user port). The result has ``containers`` and ``queueReadinessProbe``
    (the probe queue-proxy runs, ``None`` when none)."""
    pod = copy.deepcopy(component)
    index = _serving_container_index(pod)
    queue_readiness = None
    if index is not None:
        container = pod["containers"][index]
        ports = container.get("ports") or []
        user_port = int(ports[0]["containerPort"]) if ports else DEFAULT_USER_PORT
        h2c = bool(ports) and ports[0].get("name") == "h2c"
        container["ports"] = [{"name": USER_PORT_NAME, "containerPort": user_port}]
        liveness = container.get("livenessProbe")
        if liveness:
            for handler in ("httpGet", "tcpSocket"):
                action = liveness.get(handler)
                if action is not None and (
                    not multi_container_probing or not _int_port(action.get("port"))
                ):
                    action["port"] = user_port
        readiness = container.pop("readinessProbe", None)
        if readiness:
            queue_readiness = copy.deepcopy(readiness)
            for handler in ("httpGet", "tcpSocket", "grpc"):
                action = queue_readiness.get(handler)
                if action is not None and not _int_port(action.get("port")):
                    action["port"] = user_port
        queue_port = {"name": "queue-port", "containerPort": 8013 if h2c else 8012}
        queue_ports = [{"name": n, "containerPort": p} for n, p in QUEUE_PROXY_PORTS.items()]
        pod["containers"].append({"name": "queue-proxy", "ports": [*queue_ports, queue_port]})
    pod["queueReadinessProbe"] = queue_readiness
    return pod


def _int_port(port: Any) -> int:
    return port if isinstance(port, int) else 0


def running_pods(isvc: Obj) -> Iterator[tuple[str, Obj]]:
    """(where, pod spec as it runs): Knative-rewritten in Knative mode, as declared in Standard
    (KServe's raw Deployment keeps the container's ports and probes)."""
    knative = deployment_mode(isvc) == KNATIVE
    for where, component in components(isvc):
        yield where, knative_pod(component) if knative else copy.deepcopy(component)


# -- rule: probes speak what their port speaks (Knative probe rewriting) ---------------------


def _probe_port(probe: Obj) -> tuple[str, int] | None:
    for handler in ("httpGet", "tcpSocket", "grpc"):
        if handler in probe:
            port = probe[handler].get("port")
            return handler, int(port) if isinstance(port, int) else 0
    return None


def probe_protocol_violations(isvc: Obj) -> list[str]:
    """Every probe, as kubelet or queue-proxy sends it after Knative's rewriting, must reach a
    port that speaks it: httpGet (HTTP/1.1; queue-proxy's readiness probe uses HTTP/1 unless
    HTTP/2 auto-detection is on, pkg/queue/readiness/probe.go) only on the REST port, grpc only
    on the gRPC port, tcpSocket on either. An httpGet liveness probe on a container whose one
    port is h2c is rewritten to that port: kubelet sends HTTP/1.1 to a gRPC server and restarts
    the container in a loop."""
    found: list[str] = []
    for where, pod in running_pods(isvc):
        index = _serving_container_index(pod)
        for i, container in enumerate(pod.get("containers") or []):
            if container.get("name") == "queue-proxy":
                continue
            served = served_protocols(container)
            probes = {k: container.get(k) for k in ("startupProbe", "livenessProbe")}
            probes["readinessProbe"] = (
                pod.get("queueReadinessProbe") if i == index else container.get("readinessProbe")
            )
            if deployment_mode(isvc) != KNATIVE:
                probes["readinessProbe"] = container.get("readinessProbe")
            for kind, probe in probes.items():
                if not probe or not (target := _probe_port(probe)):
                    continue
                handler, port = target
                speaks = served.get(port)
                wants = {"httpGet": "http", "grpc": "grpc"}.get(handler)
                if speaks is None or (wants is not None and speaks != wants):
                    found.append(
                        f"{where}/{container.get('name')}: {kind} {handler} reaches port {port}, "
                        f"which serves {speaks or 'nothing'}"
                    )
    return found


# -- rule: KServe's webhook on spec.canary[] -------------------------------------------------


def kserve_canary_violations(isvc: Obj) -> list[str]:
    """kserve/kserve pkg/apis/serving/v1beta1/inference_service_validation.go
    ``validateCanarySpecs``: canaries only in Standard mode, each named (unique, not the stable
    name), trafficPercent 0..100 summing to <= 100, no workerSpec, no maxReplicas /
    scaleTarget / scaleMetric / autoScaling (fixed replicas), minReplicas <= the stable
    predictor's (default 1)."""
    spec = isvc.get("spec") or {}
    canaries = spec.get("canary") or []
    if not canaries:
        return []
    name = isvc["metadata"]["name"]
    found: list[str] = []
    if deployment_mode(isvc) != "Standard":
        found.append(f"{name}: canary is only supported in Standard deployment mode")
    stable = spec.get("predictor") or {}
    seen: set[str] = set()
    total = 0
    for i, entry in enumerate(canaries):
        predictor = entry.get("predictor") or {}
        cname = predictor.get("name") or ""
        at = f"{name}.canary[{i}]"
        if not cname:
            found.append(f"{at}: predictor.name is required")
        elif cname in seen or cname == stable.get("name"):
            found.append(f"{at}: predictor.name {cname!r} is duplicated")
        seen.add(cname)
        percent = int(entry.get("trafficPercent") or 0)
        if not 0 <= percent <= 100:
            found.append(f"{at}: trafficPercent must be between 0 and 100")
        total += percent
        for forbidden in ("workerSpec", "maxReplicas", "scaleTarget", "scaleMetric", "autoScaling"):
            if forbidden in predictor and (forbidden != "maxReplicas" or predictor[forbidden] > 0):
                found.append(f"{at}: must not set {forbidden} (canary uses fixed replicas)")
        if "minReplicas" in predictor and predictor["minReplicas"] > stable.get("minReplicas", 1):
            found.append(f"{at}: minReplicas must not exceed the stable predictor's")
    if total > 100:
        found.append(f"{name}: sum of canary trafficPercent values ({total}) must be <= 100")
    return found


# -- rule: a predictor-level canary must see the traffic it is meant to split -----------------


def canary_traffic_violations(isvc: Obj) -> list[str]:
    """kserve/kserve pkg/controller/v1beta1/inferenceservice/reconcilers/ingress/
    httproute_reconciler.go ``applyCanaryWeights``: spec.canary[] weights exist only on the
    Gateway API HTTPRoute of ``<name>-predictor``; the Kubernetes Service of that name selects
    the stable predictor's pods alone. A transformer that calls the predictor's cluster Service
    (``--predictor_host ...svc.cluster.local``) never sends the canary a request."""
    spec = isvc.get("spec") or {}
    if not spec.get("canary") or "transformer" not in spec:
        return []
    found: list[str] = []
    for container in spec["transformer"].get("containers") or []:
        args = [str(a) for a in container.get("args") or []]
        if "--predictor_host" in args:
            host = args[args.index("--predictor_host") + 1]
            if ".svc" in host or "." not in host.partition(":")[0]:
                found.append(
                    f"{isvc['metadata']['name']}: the transformer calls Service {host}; "
                    "spec.canary[] weights apply only on the Gateway route, so the canary "
                    "never sees transformer traffic"
                )
    return found


# -- rule: Standard-mode HPA targets -----------------------------------------------------------

DEFAULT_CPU_UTILIZATION = 80
"""kserve/kserve pkg/constants/constants.go ``DefaultCPUUtilization``."""
MIN_CPU_UTILIZATION = 50
"""Berth's floor (a judgment, not upstream): below half the request the HPA adds replicas for
load one pod carries easily; 32% and 16% were Knative concurrency targets reused as percent."""


def hpa_target_violations(isvc: Obj) -> list[str]:
    """In Standard mode KServe builds an HPA whose CPU target is ``scaleTarget`` percent of the
    request (default 80; the webhook takes 1..100: inference_service_validation.go
    ``validateScalingHPACompExtension``, reconcilers/hpa/hpa_reconciler.go
    ``getHPAMetrics``). It must lie in [MIN_CPU_UTILIZATION, 100]."""
    if deployment_mode(isvc) != "Standard":
        return []
    found: list[str] = []
    for where, component in components(isvc):
        if ".canary[" in where or component.get("scaleMetric", "cpu") != "cpu":
            continue
        target = int(component.get("scaleTarget", DEFAULT_CPU_UTILIZATION))
        if not MIN_CPU_UTILIZATION <= target <= 100:
            found.append(f"{where}: HPA CPU target {target}% of the request")
    return found
