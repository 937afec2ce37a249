"""The model's input columns: where each comes from, its TTL and fill value, computed once.

:class:`ColumnPlan` is what the TTL check, the fill and the store-fault screen need per column;
:func:`to_arrays` turns Feast's ``to_dict`` columns into the value and event-time matrices.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from berth.errors import ContractMismatchError
from berth.featurerepo import ContractFeature

TS_SUFFIX = "__ts"  # feast.online_response.TIMESTAMP_POSTFIX


@dataclass(frozen=True)
class ServedFeature:
    """One model input column: where it comes from, its TTL, its fill value."""

    name: str
    view: str
    ttl_s: float | None
    default: float | None


def served_features(
    contract: Sequence[ContractFeature], defaults: Mapping[str, float] | None
) -> list[ServedFeature]:
    return [
        ServedFeature(
            name=f.name,
            view=f.view,
            ttl_s=f.ttl.total_seconds() if f.ttl else None,
            default=None if defaults is None else defaults[f.name],
        )
        for f in contract
    ]


@dataclass(frozen=True)
class ColumnPlan:
    """What the TTL check and the fill need per model column, computed once at start."""

    features: tuple[ServedFeature, ...]
    ttl_s: np.ndarray  # inf: no TTL (request-time features)
    defaults: np.ndarray  # NaN: no fill value
    by_view: dict[str, list[int]]

    @classmethod
    def of(cls, features: Sequence[ServedFeature]) -> ColumnPlan:
        by_view: dict[str, list[int]] = {}
        for j, feature in enumerate(features):
            by_view.setdefault(feature.view, []).append(j)
        return cls(
            features=tuple(features),
            ttl_s=np.array([f.ttl_s if f.ttl_s else np.inf for f in features]),
            defaults=np.array([np.nan if f.default is None else f.default for f in features]),
            by_view=by_view,
        )


def to_arrays(
    features: Sequence[ServedFeature], columns: Mapping[str, Sequence[Any]], n: int
) -> tuple[np.ndarray, np.ndarray]:
    """Feast's columns -> values (NaN where missing) and event seconds, in contract order."""
    values = np.empty((n, len(features)), dtype=np.float64)
    stamps = np.zeros((n, len(features)), dtype=np.float64)
    for j, feature in enumerate(features):
        column = columns.get(feature.name)
        if column is None:
            raise ContractMismatchError(f"the online store returned no column {feature.name}")
        values[:, j] = [np.nan if v is None else v for v in column]
        stamps[:, j] = columns.get(feature.name + TS_SUFFIX, 0)
    return values, stamps
