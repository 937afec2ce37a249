"""The slice gate and calibration error (pure logic; the real build is in test_build_release)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from berth.artifact import SliceGate, SliceMetrics
from berth.modelbuild.slices import SliceGateError, check_gate, ece, hour_band, slice_metrics

GATE = SliceGate(max_auc_gap=0.1, max_int8_auc_drop=0.02, min_rows=100)


def _slice(group: str, auc32: float, auc8: float, rows: int = 500) -> SliceMetrics:
    return SliceMetrics(
        slice="pickup_hour_band", group=group, rows=rows, positive_rate=0.4,
        auc_fp32=auc32, auc_int8=auc8, logloss_fp32=0.5, logloss_int8=0.5,
        ece_fp32=0.05, ece_int8=0.05,
    )  # fmt: skip


def test_gate_passes_within_limits() -> None:
    check_gate([_slice("day", 0.83, 0.825), _slice("night", 0.76, 0.75)], GATE)


def test_gate_names_the_slice_with_the_auc_gap() -> None:
    with pytest.raises(
        SliceGateError, match=r"slice pickup_hour_band: fp32 AUC gap 0\.2000.*night"
    ):
        check_gate([_slice("day", 0.85, 0.85), _slice("night", 0.65, 0.65)], GATE)


def test_gate_names_the_group_where_int8_drops() -> None:
    with pytest.raises(SliceGateError, match=r"slice pickup_hour_band=rush: int8 AUC 0\.78"):
        check_gate([_slice("day", 0.83, 0.83), _slice("rush", 0.81, 0.78)], GATE)


def test_small_groups_are_reported_not_gated() -> None:
    check_gate([_slice("day", 0.85, 0.85), _slice("night", 0.5, 0.3, rows=40)], GATE)


def test_ece_is_zero_when_calibrated_and_the_gap_otherwise() -> None:
    y = np.array([0, 1] * 50)
    assert ece(y, np.full(100, 0.5)) == pytest.approx(0.0)
    assert ece(y, np.full(100, 0.9)) == pytest.approx(0.4)


def test_hour_bands() -> None:
    bands = hour_band(pd.Series([0, 5, 6, 7, 9, 10, 16, 19, 20, 22, 23]))
    assert list(bands) == ["night", "night", "day", "rush", "rush", "day", "rush", "rush",
                           "day", "night", "night"]  # fmt: skip


def test_slice_metrics_per_group_match_a_direct_computation() -> None:
    rng = np.random.default_rng(0)
    n = 400
    test = pd.DataFrame(
        {
            "pickup_hour": rng.integers(0, 24, n),
            "trip_distance_km": rng.gamma(2.5, 4.0, n),
            "is_premium": rng.integers(0, 2, n),
            "cust_is_member": rng.integers(0, 2, n),
        }
    )
    y = rng.integers(0, 2, n)
    p = np.clip(0.5 * y + rng.uniform(0, 0.5, n), 0, 1)
    out = slice_metrics(test, y, p, p)
    premium = next(s for s in out if s.slice == "is_premium" and s.group == "premium")
    mask = test["is_premium"].to_numpy() == 1
    assert premium.rows == int(mask.sum())
    assert premium.positive_rate == pytest.approx(y[mask].mean(), abs=1e-4)
    assert premium.ece_fp32 == pytest.approx(ece(y[mask], p[mask]), abs=1e-5)
