"""Served values against the artifact's data contract (berth_transformer.data_contract): pure
logic over a hand-made artifact; the real stack is in tests/integration/test_release_serving."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from berth.artifact import (
    ArtifactMetadata,
    DataContract,
    FeatureRule,
    FeatureSpec,
    ModelMetrics,
    TensorSpec,
    TrainingData,
)
from berth.errors import ContractMismatchError, DependencyUnavailableError
from berth.featurerepo import ContractFeature
from berth_transformer import metrics
from berth_transformer.data_contract import ServedContract, open_contract

FEATURES = [
    ContractFeature("rating", "float32", "driver_profile", timedelta(days=90)),
    ContractFeature("is_premium", "int64", "driver_profile", timedelta(days=90)),
    ContractFeature("conv_rate", "float32", "driver_hourly_stats", timedelta(hours=2)),
    ContractFeature("pickup_hour", "int64", "ride_context", None),
]
DEFAULTS = {"rating": 4.6, "is_premium": 0.0, "conv_rate": 0.5, "pickup_hour": 12.0}


def _artifact(with_contract: bool = True) -> ArtifactMetadata:
    now = datetime.now(UTC)
    rules = [
        FeatureRule(name="rating", dtype="float32", min=1, max=5),
        FeatureRule(name="is_premium", dtype="int64", allowed=[0, 1]),
        FeatureRule(name="conv_rate", dtype="float32", min=0, max=1),
        FeatureRule(name="pickup_hour", dtype="int64", min=0, max=23),
    ]
    return ArtifactMetadata(
        schema_version=2 if with_contract else 1,
        name="m",
        version="v1-test",
        feature_service="s",
        features=[
            FeatureSpec(name=f.name, dtype=f.dtype, view=f.view, default=DEFAULTS[f.name])  # type: ignore[arg-type]
            for f in FEATURES
        ],
        inputs=[TensorSpec(name="features", shape=[-1, 4])],
        outputs=[TensorSpec(name="score", shape=[-1])],
        quantization="static",
        metrics=ModelMetrics(
            auc_fp32=0.8,
            auc_int8=0.8,
            logloss_fp32=0.5,
            logloss_int8=0.5,
            max_abs_diff=0,
            heldout_rows=1,
        ),
        training_data=TrainingData(
            start=now, end=now, train_rows=1, heldout_rows=1, positive_rate=0.5
        ),
        created_at=now,
        files={},
        data_contract=DataContract(source="t", features=rules) if with_contract else None,
    )


def _count(feature: str, rule: str) -> float:
    return metrics.CONTRACT_VIOLATIONS.labels(feature, rule)._value.get()  # type: ignore[no-any-return]


def test_in_contract_rows_pass_unchanged() -> None:
    check = open_contract(_artifact(), FEATURES, {})
    assert check is not None
    rows = np.array([[4.9, 1, 0.2, 7], [1.0, 0, 1.0, 23]], np.float32)
    copy = rows.copy()
    assert check.check(copy) == 0 and np.array_equal(copy, rows)


def test_out_of_range_and_out_of_set_are_counted_and_filled() -> None:
    check = open_contract(_artifact(), FEATURES, {})
    assert check is not None
    before = _count("rating", "range"), _count("is_premium", "allowed")
    rows = np.array([[-1.0, 1, 0.2, 7], [4.0, 3, 0.3, 7], [7.5, 0, 0.4, 99]], np.float32)
    out = rows
    assert check.check(rows) == 3  # two ratings, one is_premium
    assert out[:, 0].tolist() == pytest.approx([4.6, 4.0, 4.6])
    assert out[:, 1].tolist() == [1, 0, 0]
    assert out[2, 3] == 99  # request-time features are the client's: not checked here
    assert _count("rating", "range") == before[0] + 2
    assert _count("is_premium", "allowed") == before[1] + 1


def test_reject_policy_is_503_naming_the_feature() -> None:
    check = open_contract(_artifact(), FEATURES, {"driver_hourly_stats": "reject"})
    assert check is not None
    rows = np.array([[4.0, 1, 1.5, 7]], np.float32)
    with pytest.raises(DependencyUnavailableError) as err:
        check.check(rows)
    assert err.value.status == 503 and "conv_rate" in err.value.client_message
    check.check(np.array([[0.5, 1, 0.5, 7]], np.float32))  # rating: default policy, fills


def test_version_1_artifact_has_no_check_and_unknown_views_refuse() -> None:
    assert open_contract(_artifact(with_contract=False), FEATURES, {}) is None
    assert open_contract(None, FEATURES, {}) is None
    with pytest.raises(ContractMismatchError, match="CONTRACT_POLICY names views"):
        open_contract(_artifact(), FEATURES, {"nope": "reject"})


def _reference_bad(check: ServedContract, matrix: np.ndarray) -> np.ndarray:
    """The check as first written: the bounds, then ``np.isin`` per allowed-set column."""
    values = matrix[:, check.columns]
    bad = (values < check.low) | (values > check.high)
    for j, rule in enumerate(check.rules):
        if rule.allowed is not None:
            bad[:, j] = ~np.isin(values[:, j], np.array(rule.allowed, np.float32))
    return bad


@pytest.mark.parametrize("seed", range(20))
def test_vectorised_check_flags_what_isin_per_column_flags(seed: int) -> None:
    rng = np.random.default_rng(seed)
    features = [
        *FEATURES,
        ContractFeature("vehicle_type", "int64", "driver_profile", timedelta(days=90)),
    ]
    artifact = _artifact()
    assert artifact.data_contract is not None
    artifact.features.append(
        FeatureSpec(name="vehicle_type", dtype="int64", view="driver_profile", default=2.0)
    )  # type: ignore[arg-type]
    artifact.data_contract.features.append(
        FeatureRule(name="vehicle_type", dtype="int64", allowed=[0.5, 1, 2, 3, 7, 1e9, -4])
    )
    check = open_contract(artifact, features, {})
    assert check is not None
    pool = np.array([0, 1, 2, 3, 7, -4, 0.5, 1e9, 4, 24, -1, 6, 0.2, 5.5, np.nan, np.inf, -np.inf])
    matrix = rng.choice(pool, size=(int(rng.integers(1, 64)), len(features))).astype(np.float32)
    expected = _reference_bad(check, matrix)
    filled = check.check(copy := matrix.copy())
    assert filled == int(expected.sum())
    changed = ~((copy == matrix) | (np.isnan(copy) & np.isnan(matrix)))
    assert np.array_equal(
        changed[:, check.columns], expected & (matrix[:, check.columns] != check.defaults)
    )
