"""The model contract check: a model must take its FeatureService's features, in order.

A model's metadata (the predictor's V2 model metadata, or an artifact's ``metadata.json``)
names its FeatureService, feature list and dtypes and its input tensor; any difference in
name, order or dtype from the FeatureService read from the feature repo is a mismatch (no
silent skew). The transformer runs it at start against the predictor, ``berth batch-score``
against the artifact it scores with.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from berth.artifact import ArtifactMetadata
from berth.errors import ContractMismatchError
from berth.featurerepo import ContractFeature
from berth.wire import INPUT_NAME as INPUT_NAME
from berth.wire import OUTPUT_NAME as OUTPUT_NAME


@dataclass(frozen=True)
class PredictorModel:
    """What the predictor says about its model, from V2 model metadata."""

    version: str
    feature_service: str
    features: list[str]
    dtypes: list[str]
    inputs: list[dict[str, Any]]
    outputs: list[dict[str, Any]]


def differences(
    service: str,
    contract: Sequence[ContractFeature],
    model: PredictorModel,
    artifact: ArtifactMetadata | None = None,
) -> list[str]:
    """Every way the predictor (and the mounted artifact) disagree with the FeatureService."""
    names = [f.name for f in contract]
    dtypes = [f.dtype for f in contract]
    out: list[str] = []
    if model.feature_service != service:
        out.append(f"predictor serves FeatureService {model.feature_service!r}, not {service!r}")
    if model.features != names:
        out.append(_list_diff("feature list", names, model.features))
    elif model.dtypes != dtypes:
        out.append(_list_diff("feature dtypes", dtypes, model.dtypes, names))
    tensor = next((t for t in model.inputs if t.get("name") == INPUT_NAME), None)
    expected_shape = [-1, len(names)]
    if tensor is None:
        out.append(f"predictor has no input tensor {INPUT_NAME!r}")
    elif tensor.get("datatype") != "FP32" or list(tensor.get("shape") or []) != expected_shape:
        out.append(
            f"predictor input {INPUT_NAME!r} is {tensor.get('datatype')} {tensor.get('shape')}, "
            f"expected FP32 {expected_shape}"
        )
    if not any(t.get("name") == OUTPUT_NAME for t in model.outputs):
        out.append(f"predictor has no output tensor {OUTPUT_NAME!r}")
    if artifact is not None:
        if artifact.version != model.version:
            out.append(
                f"mounted metadata.json is version {artifact.version!r}, "
                f"predictor serves {model.version!r}"
            )
        if artifact.feature_names != names:
            out.append(_list_diff("mounted metadata.json features", names, artifact.feature_names))
    return out


def _list_diff(
    what: str, expected: list[str], got: list[str], names: list[str] | None = None
) -> str:
    if len(expected) != len(got):
        extra = sorted(set(got) - set(expected))
        lacking = sorted(set(expected) - set(got))
        return (
            f"{what}: {len(got)} entries, expected {len(expected)} "
            f"(unexpected {extra}, missing {lacking})"
        )
    i = next(i for i, (a, b) in enumerate(zip(expected, got, strict=True)) if a != b)
    label = f"{names[i]}: " if names else ""
    if sorted(expected) == sorted(got):
        return (
            f"{what}: same entries in another order; first difference at #{i}: "
            f"{label}{got[i]!r} != {expected[i]!r}"
        )
    return f"{what}: #{i} is {label}{got[i]!r}, expected {expected[i]!r}"


def check(
    service: str,
    contract: Sequence[ContractFeature],
    model: PredictorModel,
    artifact: ArtifactMetadata | None = None,
) -> None:
    problems = differences(service, contract, model, artifact)
    if problems:
        raise ContractMismatchError("contract mismatch: " + "; ".join(problems))


def artifact_model(meta: ArtifactMetadata) -> PredictorModel:
    """What an artifact's ``metadata.json`` says about its model, as the predictor says it."""
    return PredictorModel(
        version=meta.version,
        feature_service=meta.feature_service,
        features=meta.feature_names,
        dtypes=[f.dtype for f in meta.features],
        inputs=[t.model_dump() for t in meta.inputs],
        outputs=[t.model_dump() for t in meta.outputs],
    )
