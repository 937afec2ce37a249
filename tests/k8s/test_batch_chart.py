"""The chart's batch workloads: a plain Job for the local engine, a KubeRay RayJob for the Ray
engine only when the cluster serves ``ray.io/v1`` (``.Capabilities``), every pod restricted and
without service links. No KubeRay schema is at hand: the RayJob's pod specs are checked here.
The cluster's APIs reach the render as ``helm template --api-versions`` (berth.kube.chart).
"""

from __future__ import annotations

from typing import Any

import pytest

from berth.kube.chart import CLUSTER_API_VERSIONS, merge, render_objects

pytestmark = pytest.mark.k8s

Obj = dict[str, Any]
BATCH = {
    "batch": {
        "enabled": True,
        "dataClaim": "batch-data",
        "featureDataClaim": "feature-data",
        "artifactsClaim": "artifacts",
        "featureService": "driver_ranking_v1",
    }
}


def render_with_api_versions(values: Obj, api_versions: list[str]) -> list[Obj]:
    """The chart rendered for a cluster that also serves ``api_versions`` (hooks included)."""
    return render_objects(values, hooks=True, api_versions=(*CLUSTER_API_VERSIONS, *api_versions))


def batch_objects(objects: list[Obj]) -> list[Obj]:
    """The batch workloads (the batch NetworkPolicy left out)."""
    return [
        o
        for o in objects
        if o["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "batch"
        and o["kind"] != "NetworkPolicy"
    ]


def assert_restricted(where: str, pod: Obj) -> None:
    assert pod["enableServiceLinks"] is False, where
    assert pod["securityContext"]["runAsNonRoot"] is True, where
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", where
    for container in pod["containers"]:
        ctx = container["securityContext"]
        at = f"{where}/{container['name']}"
        assert ctx["runAsNonRoot"] is True and ctx["runAsUser"] >= 10000, at
        assert ctx["allowPrivilegeEscalation"] is False, at
        assert ctx["readOnlyRootFilesystem"] is True, at
        assert ctx["capabilities"]["drop"] == ["ALL"], at
        assert ctx["seccompProfile"]["type"] == "RuntimeDefault", at
        assert {"requests", "limits"} <= set(container["resources"]), at
        mounts = {m["mountPath"] for m in container.get("volumeMounts") or []}
        assert "/tmp" in mounts, at  # the only writable place besides the claims
    volumes = {v["name"] for v in pod["volumes"]}
    for container in pod["containers"]:
        assert {m["name"] for m in container.get("volumeMounts") or []} <= volumes, where


def test_off_by_default() -> None:
    assert batch_objects(render_objects({})) == []
    assert batch_objects(render_with_api_versions({}, ["ray.io/v1"])) == []


def test_local_engine_is_a_restricted_job() -> None:
    (job,) = batch_objects(render_objects(BATCH, hooks=True))
    assert job["kind"] == "Job" and job["metadata"]["name"] == "berth-batch"
    pod = job["spec"]["template"]["spec"]
    assert_restricted("Job/berth-batch", pod)
    (container,) = pod["containers"]
    args = container["args"]
    assert args[:3] == ["batch-score", "--engine", "local"]
    assert args[args.index("--feature-service") + 1] == "driver_ranking_v1"
    claims = {
        v["name"]: v["persistentVolumeClaim"]["claimName"]
        for v in pod["volumes"]
        if "persistentVolumeClaim" in v
    }
    assert claims == {
        "data": "batch-data",
        "feature-data": "feature-data",
        "artifacts": "artifacts",
    }


def test_ray_engine_needs_the_kuberay_api() -> None:
    values = merge(BATCH, {"batch": {"engine": "ray", "workers": 3}})
    assert batch_objects(render_objects(values)) == []
    (rayjob,) = batch_objects(render_with_api_versions(values, ["ray.io/v1"]))
    assert (rayjob["apiVersion"], rayjob["kind"]) == ("ray.io/v1", "RayJob")
    spec = rayjob["spec"]
    assert spec["entrypoint"].startswith("berth batch-score --engine ray ")
    assert "--workers 3" in spec["entrypoint"] and spec["shutdownAfterJobFinishes"] is True
    cluster = spec["rayClusterSpec"]
    (workers,) = cluster["workerGroupSpecs"]
    assert workers["replicas"] == workers["minReplicas"] == workers["maxReplicas"] == 3
    assert cluster["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"
    pods = {
        "submitter": spec["submitterPodTemplate"]["spec"],
        "head": cluster["headGroupSpec"]["template"]["spec"],
        "worker": workers["template"]["spec"],
    }
    for where, pod in pods.items():
        assert_restricted(f"RayJob/{where}", pod)
    for where in ("head", "worker"):
        (container,) = pods[where]["containers"]
        assert "/dev/shm" in {m["mountPath"] for m in container["volumeMounts"]}, where
        assert container["image"] == pods["submitter"]["containers"][0]["image"]


def test_claims_are_required() -> None:
    import helm_python

    with pytest.raises(helm_python.HelmError, match="dataClaim"):
        render_objects({"batch": {"enabled": True}})
