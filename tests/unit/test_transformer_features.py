"""The TTL check and the missing/stale policy over Feast's ``to_dict`` columns (no store)."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from prometheus_client import REGISTRY

from berth.errors import DependencyUnavailableError, InvalidInputError
from berth.featurerepo import ContractFeature
from berth_transformer.features import ViewPolicy, served_features
from tests.support.feature_columns import assemble

NOW = 1_800_000_000.0
CONTRACT = [
    ContractFeature("conv_rate", "float32", "driver_hourly_stats", timedelta(hours=2)),
    ContractFeature("rating", "float32", "driver_profile", timedelta(days=90)),
    ContractFeature("cust_rating", "float32", "customer_profile", timedelta(days=90)),
    ContractFeature("pickup_hour", "int64", "ride_context", None),
]
DEFAULTS = {"conv_rate": 0.5, "rating": 4.5, "cust_rating": 4.7, "pickup_hour": 12.0}
FEATURES = served_features(CONTRACT, DEFAULTS)
POLICIES = {
    "driver_hourly_stats": ViewPolicy(join_keys=("driver_id",)),
    "driver_profile": ViewPolicy(join_keys=("driver_id",)),
    "customer_profile": ViewPolicy(join_keys=("customer_id",)),
    "ride_context": ViewPolicy(),
}


def columns(**changes: list[object]) -> dict[str, list[object]]:
    """Two rows as Feast returns them: its own column order, ``__ts`` epoch seconds."""
    fresh = int(NOW - 600)
    base: dict[str, list[object]] = {
        "customer_id": [7, 8],
        "pickup_hour": [18, 9],
        "pickup_hour__ts": [0, 0],
        "cust_rating": [4.9, 4.1],
        "cust_rating__ts": [fresh, fresh],
        "rating": [4.8, 3.9],
        "rating__ts": [fresh, fresh],
        "driver_id": [1003, 1004],
        "conv_rate": [0.25, 0.75],
        "conv_rate__ts": [fresh, fresh],
    }
    base.update(changes)
    return base


def count(kind: str, view: str, action: str) -> float:
    labels = {"view": view, "action": action}
    return REGISTRY.get_sample_value(f"berth_transformer_features_{kind}_total", labels) or 0.0


def test_maps_columns_by_name_into_contract_order() -> None:
    matrix, report = assemble(FEATURES, columns(), 2, NOW, POLICIES)
    assert matrix.dtype == np.float32
    np.testing.assert_array_equal(
        matrix, np.array([[0.25, 4.8, 4.9, 18], [0.75, 3.9, 4.1, 9]], dtype=np.float32)
    )
    assert not report.missing
    assert not report.stale


def test_missing_entity_is_filled_with_the_default_and_counted() -> None:
    before = count("missing", "driver_profile", "filled")
    cols = columns(rating=[4.8, None], rating__ts=[int(NOW), 0])
    matrix, report = assemble(FEATURES, cols, 2, NOW, POLICIES)
    assert matrix[1, 1] == np.float32(4.5)
    assert matrix[0, 1] == np.float32(4.8)
    assert report.missing == {"driver_profile": 1}
    after = count("missing", "driver_profile", "filled")
    assert after - before == 1


def test_value_older_than_ttl_is_stale_filled_and_counted() -> None:
    before = count("stale", "driver_hourly_stats", "filled")
    old = int(NOW - 2 * 3600 - 1)
    matrix, report = assemble(
        FEATURES, columns(conv_rate__ts=[old, int(NOW - 7100)]), 2, NOW, POLICIES
    )
    assert matrix[0, 0] == np.float32(0.5)  # stale -> default
    assert matrix[1, 0] == np.float32(0.75)  # inside the TTL
    assert report.stale == {"driver_hourly_stats": 1}
    after = count("stale", "driver_hourly_stats", "filled")
    assert after - before == 1


def test_request_features_have_no_ttl() -> None:
    _, report = assemble(FEATURES, columns(pickup_hour__ts=[0, 0]), 2, NOW, POLICIES)
    assert "ride_context" not in report.stale


def test_reject_policy_for_a_missing_entity_names_its_key() -> None:
    policies = {
        **POLICIES,
        "customer_profile": ViewPolicy(missing="reject", join_keys=("customer_id",)),
    }
    cols = columns(cust_rating=[4.9, None])
    before = count("missing", "customer_profile", "rejected")
    with pytest.raises(InvalidInputError) as err:
        assemble(FEATURES, cols, 2, NOW, policies)
    assert err.value.status == 400
    assert err.value.field == "customer_id"
    assert "customer_id=8" in err.value.client_message
    after = count("missing", "customer_profile", "rejected")
    assert after - before == 1


def test_reject_policy_for_a_stale_value_is_a_503() -> None:
    policies = {**POLICIES, "driver_hourly_stats": ViewPolicy(stale="reject")}
    with pytest.raises(DependencyUnavailableError) as err:
        assemble(FEATURES, columns(conv_rate__ts=[0, int(NOW - 9000)]), 2, NOW, policies)
    assert err.value.status == 503
    assert "driver_hourly_stats" not in err.value.client_message  # 5xx bodies say nothing internal
