"""Quality per slice of the held-out rows, fp32 and int8, and the slice (fairness) gate.

Slices: pickup hour band (night / rush / day), trip distance band, premium driver, member
customer. Per group fairlearn's ``MetricFrame`` computes AUC, log-loss, expected calibration
error and positive rate. The gate (:data:`GATE`, the one place its limits live) refuses to
package when, inside a slice, the fp32 AUC gap between its groups or int8's AUC drop in any
group is over the limit; groups with fewer than ``min_rows`` held-out rows are reported, not
gated (their AUC is noise).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from berth.artifact import SliceGate, SliceMetrics
from berth.errors import BerthError
from berth.modelbuild.measures import auc, logloss

GATE = SliceGate(max_auc_gap=0.15, max_int8_auc_drop=0.02, min_rows=150)
ECE_BINS = 10


class SliceGateError(BerthError):
    """A slice breaks the gate: the artifact is not packaged."""


def hour_band(hour: pd.Series) -> pd.Series:
    """night 22-05, rush 07-09 and 16-19 (as in the data's signal), day otherwise."""
    h = hour.astype(int)
    rush = h.between(7, 9) | h.between(16, 19)
    night = (h >= 22) | (h <= 5)
    return pd.Series(np.select([rush, night], ["rush", "night"], "day"), index=hour.index)


def distance_band(km: pd.Series) -> pd.Series:
    return pd.cut(km, [-np.inf, 5, 15, np.inf], labels=["<5km", "5-15km", ">15km"]).astype(str)


SLICES: dict[str, Callable[[pd.DataFrame], pd.Series]] = {
    "pickup_hour_band": lambda f: hour_band(f["pickup_hour"]),
    "trip_distance_band": lambda f: distance_band(f["trip_distance_km"]),
    "is_premium": lambda f: f["is_premium"].map({0: "standard", 1: "premium"}),
    "cust_is_member": lambda f: f["cust_is_member"].map({0: "non-member", 1: "member"}),
}


def _auc(y: np.ndarray, p: np.ndarray) -> float:
    return auc(y, p) if 0 < int(np.sum(y)) < len(y) else float("nan")


def _logloss(y: np.ndarray, p: np.ndarray) -> float:
    return logloss(y, p)


def ece(y: np.ndarray, p: np.ndarray) -> float:
    """Expected calibration error: row-weighted |mean score - positive rate| over 10 bins."""
    bins = np.minimum((np.asarray(p) * ECE_BINS).astype(int), ECE_BINS - 1)
    total = 0.0
    for b in np.unique(bins):
        inside = bins == b
        total += inside.sum() * abs(float(np.mean(p[inside])) - float(np.mean(y[inside])))
    return total / len(y)


def _frame(labels: np.ndarray, scores: np.ndarray, groups: pd.Series) -> pd.DataFrame:
    from fairlearn.metrics import MetricFrame

    frame = MetricFrame(
        metrics={
            "auc": _auc,
            "logloss": _logloss,
            "ece": ece,
            "positive_rate": lambda y, _p: float(np.mean(y)),
            "rows": lambda y, _p: len(y),
        },
        y_true=labels,
        y_pred=scores,
        sensitive_features=groups.to_numpy(),
    )
    by_group: pd.DataFrame = frame.by_group
    return by_group


def slice_metrics(
    test: pd.DataFrame, labels: np.ndarray, p32: np.ndarray, p8: np.ndarray
) -> list[SliceMetrics]:
    out = []
    for name, grouping in SLICES.items():
        groups = grouping(test).reset_index(drop=True)
        f32, f8 = _frame(labels, p32, groups), _frame(labels, p8, groups)
        for group in f32.index:
            a32, a8 = f32.loc[group, "auc"], f8.loc[group, "auc"]
            out.append(
                SliceMetrics(
                    slice=name,
                    group=str(group),
                    rows=int(f32.loc[group, "rows"]),
                    positive_rate=round(float(f32.loc[group, "positive_rate"]), 4),
                    auc_fp32=None if np.isnan(a32) else round(float(a32), 5),
                    auc_int8=None if np.isnan(a8) else round(float(a8), 5),
                    logloss_fp32=round(float(f32.loc[group, "logloss"]), 5),
                    logloss_int8=round(float(f8.loc[group, "logloss"]), 5),
                    ece_fp32=round(float(f32.loc[group, "ece"]), 5),
                    ece_int8=round(float(f8.loc[group, "ece"]), 5),
                )
            )
    return out


def check_gate(slices: list[SliceMetrics], gate: SliceGate = GATE) -> None:
    """Raise :class:`SliceGateError` naming every slice that breaks ``gate``."""
    breaches = []
    gated = [s for s in slices if s.rows >= gate.min_rows and s.auc_fp32 is not None]
    for name in dict.fromkeys(s.slice for s in gated):
        groups = [s for s in gated if s.slice == name]
        aucs = {s.group: s.auc_fp32 or 0.0 for s in groups}
        gap = max(aucs.values()) - min(aucs.values())
        if gap > gate.max_auc_gap:
            worst = min(aucs, key=aucs.__getitem__)
            breaches.append(
                f"slice {name}: fp32 AUC gap {gap:.4f} between groups (lowest: {worst} "
                f"{aucs[worst]:.4f}) > {gate.max_auc_gap}"
            )
        for s in groups:
            drop = (s.auc_fp32 or 0.0) - (s.auc_int8 or 0.0)
            if drop > gate.max_int8_auc_drop:
                breaches.append(
                    f"slice {name}={s.group}: int8 AUC {s.auc_int8} is {drop:.4f} below fp32 "
                    f"{s.auc_fp32} (limit {gate.max_int8_auc_drop})"
                )
    if breaches:
        raise SliceGateError("; ".join(breaches) + ": refusing to package")
