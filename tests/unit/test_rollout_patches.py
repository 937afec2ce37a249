"""Every rollout patch, in every mode, applied to an InferenceService and checked against
KServe's CRD schema (``../shared/kserve/`` or ``$BERTH_KSERVE_CRDS``): no schema error and no
field the API server would prune. No server involved."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import pytest

from berth.rollout import crd, patches
from berth.rollout import isvc as iv
from berth.rollout.errors import RolloutError
from berth.rollout.jsonpatch import PatchConflict
from berth.rollout.modes import Mode

ROOT = Path(__file__).resolve().parents[2]
V1, V2, V3 = "s3://models/driver-ranking/v1", "s3://models/driver-ranking/v2", "s3://m/v3"
CANARY_HOST = "driver-ranking-v2-predictor.serving.svc.cluster.local"


def crd_dir() -> Path | None:
    env = os.environ.get("BERTH_KSERVE_CRDS")
    path = Path(env) if env else ROOT.parent / "shared" / "kserve"
    return path if (path / crd.ISVC_CRD).exists() else None


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    found = crd_dir()
    if found is None:
        pytest.skip("KServe CRDs not found (../shared/kserve/ or $BERTH_KSERVE_CRDS)")
    return crd.isvc_schema(found)


PREDICTORS: dict[str, dict[str, Any]] = {
    # KServe's model spec with a ServingRuntime (storageUri on the model).
    "model": {
        "minReplicas": 1,
        "model": {"modelFormat": {"name": "onnx"}, "runtime": "berth-onnx", "storageUri": V1},
    },
    # A custom container whose model the storage initializer fetches from STORAGE_URI.
    "container": {
        "minReplicas": 1,
        "containers": [
            {
                "name": "kserve-container",
                "image": "berth/predictor:0.1.0",
                "args": ["--model_name", "driver-ranking"],
                "env": [
                    {"name": "BERTH_PREDICTOR_MAX_BATCH_ROWS", "value": "256"},
                    {"name": "STORAGE_URI", "value": V1},
                ],
            }
        ],
    },
}


def make(mode: str, predictor: str = "container", **transformer_env: str) -> dict[str, Any]:
    """A driver-ranking InferenceService in ``mode`` (Serverless or RawDeployment)."""
    env = [
        {"name": "STORAGE_URI", "value": V1},  # the chart's: the artifact for its metadata.json
        {"name": "BERTH_TRANSFORMER_FEATURE_SERVICE", "value": "driver_ranking_v1"},
        {"name": "REDIS_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "r", "key": "p"}}},
    ] + [{"name": k, "value": v} for k, v in transformer_env.items()]
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {
            "name": "driver-ranking",
            "namespace": "serving",
            "resourceVersion": "41",
            "annotations": {iv.MODE_ANNOTATION: mode},
        },
        "spec": {
            "predictor": copy.deepcopy(PREDICTORS[predictor]),
            "transformer": {
                "containers": [
                    {"name": "kserve-container", "image": "berth/transformer:0.1.0", "env": env}
                ]
            },
        },
    }


def step(obj: dict[str, Any], patch: patches.Patch, schema: dict[str, Any]) -> dict[str, Any]:
    """Apply ``patch`` as the API server would, check the result, bump resourceVersion."""
    assert patch.ops[0] == {"op": "test", "path": "/metadata/resourceVersion", "value": "41"}
    new = patch.apply(obj)
    assert crd.problems(new, schema) == []
    new["metadata"]["resourceVersion"] = "41"  # keep the guard value stable across steps
    return new


def uri(predictor: dict[str, Any]) -> str:
    return iv.model_uri_slot(predictor).value


@pytest.fixture(params=["model", "container"])
def shape(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# -- Knative ------------------------------------------------------------------------------------


def test_knative_canary_promote(schema: dict[str, Any], shape: str) -> None:
    obj = make("Serverless", shape)
    assert crd.problems(obj, schema) == []
    obj = step(obj, patches.canary(obj, 20, Mode.KNATIVE, storage_uri=V2), schema)
    assert obj["spec"]["predictor"]["canaryTrafficPercent"] == 20
    assert uri(obj["spec"]["predictor"]) == V2
    obj = step(obj, patches.canary(obj, 50, Mode.KNATIVE), schema)
    assert obj["spec"]["predictor"]["canaryTrafficPercent"] == 50
    assert env(obj)["STORAGE_URI"] == V1  # the transformer describes the primary meanwhile
    obj = step(obj, patches.promote(obj, Mode.KNATIVE), schema)
    assert "canaryTrafficPercent" not in obj["spec"]["predictor"]
    assert uri(obj["spec"]["predictor"]) == V2
    assert env(obj)["STORAGE_URI"] == V2  # and the promoted model after


def test_knative_rollback(schema: dict[str, Any], shape: str) -> None:
    obj = make("Knative", shape)
    obj = step(obj, patches.canary(obj, 10, Mode.KNATIVE, storage_uri=V2), schema)
    obj = step(obj, patches.rollback(obj, Mode.KNATIVE), schema)
    assert obj["spec"]["predictor"]["canaryTrafficPercent"] == 0
    assert env(obj)["STORAGE_URI"] == V1


def test_knative_promote_and_rollback_need_a_canary() -> None:
    obj = make("Serverless")
    with pytest.raises(RolloutError, match="no canary"):
        patches.promote(obj, Mode.KNATIVE)
    with pytest.raises(RolloutError, match="no canary"):
        patches.rollback(obj, Mode.KNATIVE)


# -- Standard -----------------------------------------------------------------------------------


def test_standard_canary_promote(schema: dict[str, Any], shape: str) -> None:
    obj = make("RawDeployment", shape)
    obj = step(obj, patches.canary(obj, 20, Mode.STANDARD, storage_uri=V2, name="v2"), schema)
    (entry,) = obj["spec"]["canary"]
    assert entry["trafficPercent"] == 20 and entry["predictor"]["name"] == "v2"
    assert uri(entry["predictor"]) == V2 and uri(obj["spec"]["predictor"]) == V1
    assert entry["predictor"]["minReplicas"] == 1  # a copy of the primary, new model
    if shape == "model":  # a canary's model container must be named (the CRD requires it)
        assert entry["predictor"]["model"]["name"] == "kserve-container"
    obj = step(obj, patches.canary(obj, 60, Mode.STANDARD), schema)
    assert obj["spec"]["canary"][0]["trafficPercent"] == 60
    obj = step(obj, patches.promote(obj, Mode.STANDARD), schema)
    assert "canary" not in obj["spec"]
    assert obj["spec"]["predictor"]["name"] == "v2"  # its Deployment is kept, no restart
    assert uri(obj["spec"]["predictor"]) == V2 and env(obj)["STORAGE_URI"] == V2
    # The next canary needs a name other than the primary's.
    with pytest.raises(RolloutError, match="already called"):
        patches.canary(obj, 5, Mode.STANDARD, storage_uri=V3, name="v2")
    obj = step(obj, patches.canary(obj, 5, Mode.STANDARD, storage_uri=V3), schema)
    assert obj["spec"]["canary"][0]["predictor"]["name"] == patches.default_canary_name(V3)


def test_standard_canary_carries_no_scale_fields_kserve_refuses(schema: dict[str, Any]) -> None:
    """KServe's webhook refuses maxReplicas / scaleMetric / scaleTarget / autoScaling on a
    spec.canary[] predictor (kserve/kserve pkg/apis/serving/v1beta1/
    inference_service_validation.go): the canary runs the primary's minReplicas, and a
    promotion gives the promoted predictor the primary's scaling back."""
    obj = make("RawDeployment", "model")
    scaling = {"minReplicas": 2, "maxReplicas": 6, "scaleMetric": "cpu", "scaleTarget": 70}
    obj["spec"]["predictor"].update(scaling)
    obj = step(obj, patches.canary(obj, 20, Mode.STANDARD, storage_uri=V2, name="v2"), schema)
    canary_predictor = obj["spec"]["canary"][0]["predictor"]
    assert not set(patches.CANARY_REFUSED) & canary_predictor.keys()
    assert canary_predictor["minReplicas"] == 2
    obj = step(obj, patches.promote(obj, Mode.STANDARD), schema)
    assert {k: obj["spec"]["predictor"][k] for k in scaling} == scaling
    assert uri(obj["spec"]["predictor"]) == V2 and obj["spec"]["predictor"]["name"] == "v2"


def test_standard_rollback_removes_the_entry(schema: dict[str, Any], shape: str) -> None:
    obj = make("Standard", shape)
    obj = step(obj, patches.canary(obj, 20, Mode.STANDARD, storage_uri=V2), schema)
    obj = step(obj, patches.rollback(obj, Mode.STANDARD), schema)
    assert "canary" not in obj["spec"] and uri(obj["spec"]["predictor"]) == V1
    assert env(obj)["STORAGE_URI"] == V1


def test_standard_several_canaries(schema: dict[str, Any]) -> None:
    obj = make("RawDeployment")
    obj = step(obj, patches.canary(obj, 30, Mode.STANDARD, storage_uri=V2, name="a"), schema)
    obj = step(obj, patches.canary(obj, 30, Mode.STANDARD, storage_uri=V3, name="b"), schema)
    with pytest.raises(RolloutError, match="several canaries"):
        patches.promote(obj, Mode.STANDARD)
    with pytest.raises(RolloutError, match="110%"):
        patches.canary(obj, 80, Mode.STANDARD, name="b")
    obj = step(obj, patches.rollback(obj, Mode.STANDARD, name="a"), schema)
    assert [e["predictor"]["name"] for e in obj["spec"]["canary"]] == ["b"]
    obj = step(obj, patches.promote(obj, Mode.STANDARD, name="b"), schema)
    assert "canary" not in obj["spec"] and uri(obj["spec"]["predictor"]) == V3
    assert env(obj)["STORAGE_URI"] == V3


def test_standard_canary_needs_a_model_and_a_valid_name() -> None:
    obj = make("RawDeployment")
    with pytest.raises(RolloutError, match="--storage-uri"):
        patches.canary(obj, 10, Mode.STANDARD)
    with pytest.raises(RolloutError, match="must match"):
        patches.canary(obj, 10, Mode.STANDARD, storage_uri=V2, name="V2_bad")
    with pytest.raises(RolloutError, match="no canary"):
        patches.rollback(obj, Mode.STANDARD)


# -- Transformer canary and shadow (either deployment mode) --------------------------------------


@pytest.fixture(params=["Serverless", "RawDeployment"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def env(obj: dict[str, Any]) -> dict[str, Any]:
    container = obj["spec"]["transformer"]["containers"][0]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def test_transformer_canary_promote(schema: dict[str, Any], mode: str, shape: str) -> None:
    obj = make(mode, shape)
    obj = step(obj, patches.canary(obj, 20, Mode.TRANSFORMER, host=CANARY_HOST), schema)
    assert env(obj)[iv.CANARY_HOST] == CANARY_HOST and env(obj)[iv.CANARY_PERCENT] == "20"
    obj = step(obj, patches.canary(obj, 40, Mode.TRANSFORMER), schema)
    assert env(obj)[iv.CANARY_PERCENT] == "40"
    assert env(obj)["REDIS_PASSWORD"] == {"secretKeyRef": {"name": "r", "key": "p"}}
    with pytest.raises(RolloutError, match="--storage-uri"):
        patches.promote(obj, Mode.TRANSFORMER)
    obj = step(obj, patches.promote(obj, Mode.TRANSFORMER, storage_uri=V2), schema)
    assert iv.CANARY_HOST not in env(obj) and iv.CANARY_PERCENT not in env(obj)
    assert uri(obj["spec"]["predictor"]) == V2 and env(obj)["STORAGE_URI"] == V2
    assert env(obj)["REDIS_PASSWORD"] == {"secretKeyRef": {"name": "r", "key": "p"}}


def test_transformer_promote_with_the_uri_after_the_canary_env(schema: dict[str, Any]) -> None:
    """The env entries the promote removes come before STORAGE_URI: the patch still writes
    the right entry (JSON Patch indices shift as entries go)."""
    obj = make("Serverless", **{iv.CANARY_HOST: CANARY_HOST, iv.CANARY_PERCENT: "30"})
    entries = obj["spec"]["transformer"]["containers"][0]["env"]
    entries.append(entries.pop(0))  # STORAGE_URI last
    obj = step(obj, patches.promote(obj, Mode.TRANSFORMER, storage_uri=V2), schema)
    assert env(obj)["STORAGE_URI"] == V2 and iv.CANARY_HOST not in env(obj)
    assert len(env(obj)) == 3


def test_transformer_rollback(schema: dict[str, Any], mode: str) -> None:
    obj = make(mode, **{iv.CANARY_HOST: CANARY_HOST, iv.CANARY_PERCENT: "30"})
    obj = step(obj, patches.rollback(obj, Mode.TRANSFORMER), schema)
    assert iv.CANARY_HOST not in env(obj) and uri(obj["spec"]["predictor"]) == V1
    assert env(obj)["STORAGE_URI"] == V1
    with pytest.raises(RolloutError, match="no transformer canary"):
        patches.rollback(obj, Mode.TRANSFORMER)


def test_transformer_canary_needs_a_host_and_no_storage_uri() -> None:
    obj = make("Serverless")
    with pytest.raises(RolloutError, match="--host"):
        patches.canary(obj, 10, Mode.TRANSFORMER)
    with pytest.raises(RolloutError, match="storage-uri"):
        patches.canary(obj, 10, Mode.TRANSFORMER, host=CANARY_HOST, storage_uri=V2)


def test_shadow_enable_disable(schema: dict[str, Any], mode: str) -> None:
    obj = make(mode)
    obj = step(obj, patches.shadow(obj, "shadow-predictor.serving:80"), schema)
    assert env(obj)[iv.SHADOW_HOST] == "shadow-predictor.serving:80"
    obj = step(obj, patches.shadow(obj, "other:80"), schema)
    assert env(obj)[iv.SHADOW_HOST] == "other:80"
    obj = step(obj, patches.shadow(obj, None), schema)
    assert iv.SHADOW_HOST not in env(obj)
    assert not patches.shadow(obj, None).changes  # already off: nothing to send


def test_transformer_without_env_list(schema: dict[str, Any]) -> None:
    obj = make("Serverless")
    del obj["spec"]["transformer"]["containers"][0]["env"]
    obj = step(obj, patches.shadow(obj, "s:80"), schema)
    assert env(obj) == {iv.SHADOW_HOST: "s:80"}


@pytest.mark.parametrize("layer", [Mode.KNATIVE, Mode.STANDARD])
def test_promote_without_a_transformer_uri_touches_only_the_predictor(
    schema: dict[str, Any], layer: Mode
) -> None:
    obj = make("Serverless" if layer is Mode.KNATIVE else "RawDeployment")
    del obj["spec"]["transformer"]["containers"][0]["env"][0]  # a transformer of its own
    obj = step(obj, patches.canary(obj, 20, layer, storage_uri=V2), schema)
    before = env(obj)
    patch = patches.promote(obj, layer)
    assert "transformer" not in patch.summary
    assert env(step(obj, patch, schema)) == before


def test_no_transformer() -> None:
    obj = make("Serverless")
    del obj["spec"]["transformer"]
    with pytest.raises(RolloutError, match="transformer"):
        patches.shadow(obj, "s:80")


# -- guards ---------------------------------------------------------------------------------------


def test_patch_refuses_a_changed_object() -> None:
    obj = make("Serverless")
    patch = patches.canary(obj, 20, Mode.KNATIVE)
    changed = copy.deepcopy(obj)
    changed["metadata"]["resourceVersion"] = "42"
    with pytest.raises(PatchConflict, match="resourceVersion"):
        patch.apply(changed)


def test_env_patch_refuses_a_reordered_list() -> None:
    obj = make("Serverless", **{iv.SHADOW_HOST: "a:80"})
    del obj["metadata"]["resourceVersion"]  # only the env name test stands in the way
    patch = patches.shadow(obj, None)
    reordered = copy.deepcopy(obj)
    reordered["spec"]["transformer"]["containers"][0]["env"].reverse()
    with pytest.raises(PatchConflict, match="test failed"):
        patch.apply(reordered)


@pytest.mark.parametrize("value", [-1, 101])
def test_percent_bounds(value: int) -> None:
    with pytest.raises(RolloutError, match=r"0\.\.100"):
        patches.canary(make("Serverless"), value, Mode.KNATIVE)


def test_crd_check_catches_pruned_and_invalid_fields(schema: dict[str, Any]) -> None:
    obj = make("RawDeployment")
    obj["spec"]["predictor"]["canaryTrafficPercnt"] = 5
    obj["spec"]["canary"] = [{"predictor": {"name": "x"}, "trafficPercent": 150}]
    found = crd.problems(obj, schema)
    assert any("canaryTrafficPercnt: unknown field" in p for p in found)
    assert any("trafficPercent" in p and "150" in p for p in found)
