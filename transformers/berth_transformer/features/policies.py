"""Each view's missing/stale policy and the TTL check, applied to a read's matrices.

Feast's Python online path does not enforce a view's TTL (feast #1802, #6821) and answers a
missing entity with ``None``: :func:`apply_policies` checks every value's event time against
its view's TTL, applies the declared policy per view (fill the artifact's default and count it,
or reject the request) and returns the float32 model input.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from berth.errors import DependencyUnavailableError, InvalidInputError
from berth_transformer import metrics
from berth_transformer.features.columns import ColumnPlan
from berth_transformer.settings import Policy


@dataclass(frozen=True)
class ViewPolicy:
    """What to do with a view's missing and stale values, and the request field naming it."""

    missing: Policy = "default"
    stale: Policy = "default"
    join_keys: tuple[str, ...] = ()


@dataclass
class ReadReport:
    """Rows per view that were missing or stale, and what was done with them."""

    missing: dict[str, int] = field(default_factory=dict)
    stale: dict[str, int] = field(default_factory=dict)
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (view, "missing"|"stale")
    filled: int = 0  # values filled from the artifact's defaults
    unknown: list[str] = field(default_factory=list)  # entities with no stored value in a view


def apply_policies(
    plan: ColumnPlan,
    values: np.ndarray,
    stamps: np.ndarray,
    now: float,
    policies: Mapping[str, ViewPolicy],
    rows: Mapping[str, Sequence[Any]],
) -> tuple[np.ndarray, ReadReport]:
    """The TTL check and each view's missing/stale policy -> the float32 model input.

    Raises :class:`InvalidInputError` (a ``reject`` view has a missing entity: 400 naming its
    join key, with the key's value from ``rows``) or :class:`DependencyUnavailableError` (a
    ``reject`` view is stale: 503).
    """
    missing = np.isnan(values)
    stale = ~missing & (now - stamps > plan.ttl_s)

    report = ReadReport()
    fill = missing | stale
    if fill.any():
        for view, cols in plan.by_view.items():
            policy = policies.get(view, ViewPolicy())
            missing_rows = missing[:, cols].any(axis=1)
            stale_rows = stale[:, cols].any(axis=1) & ~missing_rows
            for kind, flagged, rule in (
                ("missing", missing_rows, policy.missing),
                ("stale", stale_rows, policy.stale),
            ):
                count = int(flagged.sum())
                if not count:
                    continue
                getattr(report, kind)[view] = count
                if rule == "reject":
                    report.rejected.append((view, kind))
        _count(report)
        if report.rejected:
            _raise_rejection(report, policies, rows, missing, plan)
        values = np.where(fill, plan.defaults[None, :], values)
        report.filled = int(fill.sum())
    return values.astype(np.float32), report


def _count(report: ReadReport) -> None:
    rejected = set(report.rejected)
    for view, count in report.missing.items():
        action = "rejected" if (view, "missing") in rejected else "filled"
        metrics.FEATURES_MISSING.labels(view, action).inc(count)
    for view, count in report.stale.items():
        action = "rejected" if (view, "stale") in rejected else "filled"
        metrics.FEATURES_STALE.labels(view, action).inc(count)


def _raise_rejection(
    report: ReadReport,
    policies: Mapping[str, ViewPolicy],
    rows: Mapping[str, Sequence[Any]],
    missing: np.ndarray,
    plan: ColumnPlan,
) -> None:
    """A rejected missing entity is the caller's (400, naming the key); a stale one is ours."""
    cols = plan.by_view
    for view, kind in report.rejected:
        if kind != "missing":
            continue
        keys = policies.get(view, ViewPolicy()).join_keys or (plan.features[cols[view][0]].name,)
        row = int(np.argmax(missing[:, cols[view]].any(axis=1)))
        ids = ", ".join(f"{key}={rows[key][row]}" for key in keys if key in rows)
        raise InvalidInputError(f"{keys[0]}: no features in {view} for {ids}", field=keys[0])
    view = report.rejected[0][0]
    raise DependencyUnavailableError(
        "fresh features", f"{report.stale[view]} rows of {view} older than the view's TTL"
    )
