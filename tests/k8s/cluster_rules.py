"""The cluster's runtime rules that no schema shows, re-implemented from upstream source.

Each rule is a function over rendered objects that returns its violations (empty: the objects
follow the rule). None of them knows Berth's chart: they re-apply what the cited upstream code
does to *any* object, so tests/k8s/test_cluster_rules.py checks every rendered scenario with
them and feeds each one a hand-built violating object it must reject.

Upstream commits read (``fetch``): knative/serving 98e5ef90, kserve/kserve aaac4e29,
prometheus-operator/prometheus-operator 6adcebc5, helm/helm e9b85e4d.
"""

from __future__ import annotations

import copy
import re
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


# -- rule: PodMonitor targets (Prometheus Operator selection by port) -------------------------


def _pod_targets(labels: Obj, pod: Obj) -> list[dict[str, str]]:
    """Prometheus' kubernetes_sd ``role: pod``: one target per declared container port, one per
    container without ports (port labels empty)."""
    targets = []
    for container in pod.get("containers") or []:
        base = {f"__meta_kubernetes_pod_label_{k}": str(v) for k, v in labels.items()}
        base["__meta_kubernetes_pod_container_name"] = str(container.get("name"))
        base["__meta_kubernetes_pod_ip"] = "10.0.0.1"
        ports = container.get("ports") or [{}]
        for port in ports:
            target = dict(base)
            target["__meta_kubernetes_pod_container_port_name"] = str(port.get("name", ""))
            number = str(port.get("containerPort", ""))
            target["__meta_kubernetes_pod_container_port_number"] = number
            target["__address__"] = f"10.0.0.1:{number}" if number else "10.0.0.1"
            targets.append(target)
    return targets


def _relabel(targets: list[dict[str, str]], rules: list[Obj]) -> list[dict[str, str]]:
    """Prometheus relabel_config keep / drop / replace (regex anchored, sources joined by
    ``;``)."""
    out = []
    for target in targets:
        kept: dict[str, str] | None = dict(target)
        for rule in rules:
            assert kept is not None
            sources = rule.get("sourceLabels") or []
            value = ";".join(kept.get(s, "") for s in sources)
            regex = re.compile(f"^(?:{rule.get('regex', '(.*)')})$")
            action = rule.get("action", "replace")
            match = regex.match(value)
            if (action == "keep" and not match) or (action == "drop" and match):
                kept = None
            elif action == "replace" and match:
                replacement = str(rule.get("replacement", "$1"))
                replacement = re.sub(r"\$\{?(\d+)\}?", r"\\\1", replacement)
                kept[rule["targetLabel"]] = match.expand(replacement)
            if kept is None:
                break
        if kept is not None:
            out.append(kept)
    return out


def podmonitor_targets(podmonitor: Obj, labels: Obj, pod: Obj) -> list[dict[str, str]]:
    """The targets Prometheus keeps for one pod: prometheus-operator pkg/prometheus/promcfg.go
    ``generatePodMonitorConfig`` keeps the pod's labels matching ``selector.matchLabels``, then
    ``port`` (by container port name) or ``portNumber``, then the endpoint's relabelings."""
    selector = (podmonitor.get("spec") or {}).get("selector") or {}
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return []
    found = []
    for endpoint in podmonitor["spec"].get("podMetricsEndpoints") or []:
        targets = _pod_targets(labels, pod)
        if endpoint.get("port"):
            rule = {"sourceLabels": ["__meta_kubernetes_pod_container_port_name"]}
            targets = _relabel(targets, [{**rule, "action": "keep", "regex": endpoint["port"]}])
        elif endpoint.get("portNumber"):
            rule = {"sourceLabels": ["__meta_kubernetes_pod_container_port_number"]}
            regex = str(endpoint["portNumber"])
            targets = _relabel(targets, [{**rule, "action": "keep", "regex": regex}])
        found += _relabel(targets, endpoint.get("relabelings") or [])
    return found


def podmonitor_violations(objects: list[Obj]) -> list[str]:
    """Every PodMonitor gets exactly one target per pod it selects (as the pod runs: Knative
    replaces the ports), on a port where the model container serves REST (/metrics)."""
    monitors = [o for o in objects if o.get("kind") == "PodMonitor"]
    pods = [
        (where, component.get("labels") or {}, pod)
        for isvc in objects
        if isvc.get("kind") == "InferenceService"
        for (where, component), (_, pod) in zip(components(isvc), running_pods(isvc), strict=True)
    ]
    found: list[str] = []
    for monitor in monitors:
        name = f"PodMonitor/{monitor['metadata']['name']}"
        selected = 0
        for where, labels, pod in pods:
            selector = monitor["spec"].get("selector", {}).get("matchLabels") or {}
            if any(labels.get(k) != v for k, v in selector.items()):
                continue
            selected += 1
            targets = podmonitor_targets(monitor, labels, pod)
            http = {
                p
                for c in pod["containers"]
                if c.get("name") != "queue-proxy"
                for p, proto in served_protocols(c).items()
                if proto == "http"
            }
            ports = [t["__address__"].rpartition(":")[2] for t in targets]
            if len(targets) != 1 or not ports[0].isdigit() or int(ports[0]) not in http:
                found.append(f"{name}: {where} gives targets on ports {ports}, wants one on {http}")
        if not selected:
            found.append(f"{name}: selects no pod")
    return found


# -- rule: objects need their API on the cluster ------------------------------------------------


def missing_api_violations(objects: list[Obj], api_versions: set[str]) -> list[str]:
    """Helm (pkg/action/install.go) refuses the whole install when an object's apiVersion/kind
    is not served by the cluster ("no matches for kind"): a chart renders optional custom
    resources only when ``.Capabilities.APIVersions.Has`` their group/version."""
    core = ("v1", "apps/v1", "batch/v1", "policy/v1", "networking.k8s.io/v1")
    found = []
    for obj in objects:
        version = str(obj.get("apiVersion"))
        if version not in core and version not in api_versions:
            found.append(f"{obj.get('kind')}/{obj['metadata']['name']}: {version} not served")
    return found


# -- rule: Jobs and `helm upgrade` --------------------------------------------------------------

HOOK = "helm.sh/hook"


def job_upgrade_violations(before: list[Obj], after: list[Obj]) -> list[str]:
    """helm/helm pkg/release/v1/util/manifest_sorter.go: objects without ``helm.sh/hook`` are
    release resources, patched on every upgrade (pkg/kube/client.go ``Update``: patch when it
    exists, create when missing). Kubernetes refuses a change of a Job's ``spec.template``
    (kubernetes pkg/apis/batch/validation/validation.go ``ValidateJobSpecUpdate``: field is
    immutable), and re-creates a Job its ``ttlSecondsAfterFinished`` deleted, running it again.
    ``before`` and ``after`` are two renders of one release (e.g. two chart versions)."""
    old = {o["metadata"]["name"]: o for o in before if o.get("kind") == "Job"}
    found = []
    for job in after:
        annotations = (job.get("metadata") or {}).get("annotations") or {}
        if job.get("kind") != "Job" or HOOK in annotations:
            continue
        name = job["metadata"]["name"]
        if "ttlSecondsAfterFinished" in job.get("spec", {}):
            found.append(f"Job/{name}: deleted after its TTL, re-created by the next upgrade")
        previous = old.get(name)
        if previous and previous["spec"].get("template") != job["spec"].get("template"):
            found.append(f"Job/{name}: upgrade changes spec.template (immutable)")
    return found


# -- rule: Istio AuthorizationPolicy admits the chart's own callers ---------------------------


def _istio_match(value: str, patterns: list[str]) -> bool:
    """Istio's string match: exact, ``prefix*``, ``*suffix`` or ``*``."""
    for pattern in patterns:
        if pattern == "*" or pattern == value:
            return True
        if pattern.endswith("*") and value.startswith(pattern[:-1]):
            return True
        if pattern.startswith("*") and value.endswith(pattern[1:]):
            return True
    return False


def istio_allows(policy: Obj, principal: str, method: str, path: str) -> bool:
    """An ALLOW AuthorizationPolicy admits a request when one rule matches it: every ``from``
    source and ``to`` operation listed in the rule matches (istio/istio
    pilot/pkg/security/authz/model/model.go; only principals, methods and paths here)."""
    for rule in (policy.get("spec") or {}).get("rules") or []:
        sources = [f.get("source") or {} for f in rule.get("from") or []]
        operations = [t.get("operation") or {} for t in rule.get("to") or []]
        if sources and not any(
            "principals" not in s or _istio_match(principal, s["principals"]) for s in sources
        ):
            continue
        if operations and not any(
            ("methods" not in o or method in o["methods"])
            and ("paths" not in o or _istio_match(path, o["paths"]))
            for o in operations
        ):
            continue
        return True
    return False


def helm_test_admission_violations(
    objects: list[Obj], trust_domain: str = "cluster.local"
) -> list[str]:
    """The ``helm test`` pod's request (a POST to the URL in its command, as its
    ServiceAccount's mTLS identity) must pass every ALLOW AuthorizationPolicy of the release."""
    found = []
    for pod in objects:
        annotations = (pod.get("metadata") or {}).get("annotations") or {}
        if pod.get("kind") != "Pod" or annotations.get(HOOK) != "test":
            continue
        namespace = pod["metadata"].get("namespace", "default")
        principal = f"{trust_domain}/ns/{namespace}/sa/{pod['spec'].get('serviceAccountName')}"
        script = " ".join(str(a) for c in pod["spec"]["containers"] for a in c.get("args") or [])
        match = re.search(r"https?://[^/\"' ]+(/[^\"' ]*)", script)
        path = match.group(1) if match else "/"
        for policy in objects:
            if policy.get("kind") != "AuthorizationPolicy":
                continue
            if (policy.get("spec") or {}).get("action", "ALLOW") != "ALLOW":
                continue
            if not istio_allows(policy, principal, "POST", path):
                name = policy["metadata"]["name"]
                found.append(f"AuthorizationPolicy/{name} refuses the helm test pod (POST {path})")
    return found


# -- rule: a node drain never takes the last pod ---------------------------------------------


def drain_violations(objects: list[Obj]) -> list[str]:
    """kubernetes pkg/controller/disruption/disruption.go: with ``maxUnavailable`` a PDB allows
    ``currentHealthy - (expected - maxUnavailable)`` evictions. A drain keeps a component
    serving only if, at its fewest replicas, each eviction leaves one pod: every primary
    InferenceService component needs a PDB selecting it and ``minReplicas - maxUnavailable >=
    1``."""
    budgets = [o for o in objects if o.get("kind") == "PodDisruptionBudget"]
    found = []
    for isvc in objects:
        if isvc.get("kind") != "InferenceService" or "transformer" not in isvc.get("spec", {}):
            continue
        for where, component in components(isvc):
            if ".canary[" in where:
                continue
            labels = component.get("labels") or {}
            guarding = [
                b
                for b in budgets
                if all(
                    labels.get(k) == v
                    for k, v in (b["spec"].get("selector", {}).get("matchLabels") or {}).items()
                )
            ]
            if not guarding:
                found.append(f"{where}: no PodDisruptionBudget")
                continue
            fewest = int(component.get("minReplicas", 1))
            for budget in guarding:
                if fewest - int(budget["spec"].get("maxUnavailable", 0)) < 1:
                    found.append(f"{where}: a drain may evict all {fewest} pod(s)")
    return found
