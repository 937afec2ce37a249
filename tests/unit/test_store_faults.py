"""Store faults apart from client faults (pure logic over value matrices, no store)."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from berth.errors import DependencyUnavailableError
from berth.featurerepo import ContractFeature
from berth_transformer.features import ColumnPlan, ViewPolicy, served_features, store_faults

CONTRACT = [
    ContractFeature("conv_rate", "float32", "driver_hourly_stats", timedelta(hours=2)),
    ContractFeature("cust_rating", "float32", "customer_profile", timedelta(days=90)),
    ContractFeature("pickup_hour", "int64", "ride_context", None),
]
PLAN = ColumnPlan.of(
    served_features(CONTRACT, {"conv_rate": 0.5, "cust_rating": 4.7, "pickup_hour": 12})
)
ROWS = {"driver_id": [1003, 1004], "customer_id": [7, 7], "pickup_hour": [18, 9]}


def _policies(missing: str = "default") -> dict[str, ViewPolicy]:
    return {
        "driver_hourly_stats": ViewPolicy(missing=missing, join_keys=("driver_id",)),  # type: ignore[arg-type]
        "customer_profile": ViewPolicy(join_keys=("customer_id",)),
        "ride_context": ViewPolicy(),
    }


@pytest.mark.parametrize("bad", [np.inf, -np.inf, 1e39, 1e300])
def test_unreadable_values_become_missing_under_default(bad: float) -> None:
    values = np.array([[0.25, 4.9, 18.0], [bad, 4.1, 9.0]])
    screened = store_faults.screen(PLAN, values, ROWS, _policies())
    assert np.isnan(screened[1, 0]) and not np.isnan(screened[0]).any()


def test_unreadable_values_are_a_500_under_reject_never_a_400() -> None:
    values = np.array([[0.25, 4.9, 18.0], [np.inf, 4.1, 9.0]])
    with pytest.raises(store_faults.StoreFaultError) as err:
        store_faults.screen(PLAN, values, ROWS, _policies("reject"))
    assert err.value.status == 500
    assert "driver_id=1004" in err.value.message and "conv_rate" in err.value.message


def test_all_missing_is_503_and_unknown_entities_are_named() -> None:
    missing = np.array([[True, True, False], [True, True, False]])  # request columns are never
    with pytest.raises(DependencyUnavailableError):
        store_faults.check_not_all_missing(PLAN, missing, _policies())
    missing[0, 1] = False  # customer 7 known in row 0
    store_faults.check_not_all_missing(PLAN, missing, _policies())
    unknown = store_faults.unknown_entities(PLAN, missing, ROWS, _policies())
    assert unknown == ["driver_id=1003", "driver_id=1004", "customer_id=7"]
    assert store_faults.listed([f"driver_id={i}" for i in range(20)]).endswith(";+4 more")
