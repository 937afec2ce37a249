"""The platform's runtime rules around the InferenceServices, re-implemented from upstream
source (see cluster_rules.py for how the rules are used): the Prometheus Operator's PodMonitor
target selection, objects whose API the cluster lacks, Helm upgrades of Jobs, Istio's ALLOW
policies, and node drains against PodDisruptionBudgets."""

from __future__ import annotations

import re
from typing import Any

from tests.k8s.cluster_rules import components, running_pods, served_protocols

Obj = dict[str, Any]


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
