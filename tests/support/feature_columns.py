"""Test helper: the feature reader's policy step over Feast's ``to_dict`` columns (no store)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from berth_transformer.features import ColumnPlan, ReadReport, ServedFeature, ViewPolicy
from berth_transformer.features.columns import to_arrays
from berth_transformer.features.policies import apply_policies


def assemble(
    features: Sequence[ServedFeature],
    columns: Mapping[str, Sequence[Any]],
    n: int,
    now: float,
    policies: Mapping[str, ViewPolicy],
) -> tuple[np.ndarray, ReadReport]:
    """Feast's ``to_dict(include_event_timestamps=True)`` -> float32 ``[n, len(features)]``."""
    values, stamps = to_arrays(features, columns, n)
    return apply_policies(ColumnPlan.of(features), values, stamps, now, policies, columns)
