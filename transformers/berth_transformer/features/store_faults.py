"""Faults of the online store, kept apart from the client's: never a 4xx, never silent.

- A stored value that is not a number a feature can hold (undecodable bytes, ``+inf``, or
  beyond float32's range, which the model's float32 input would turn into ``inf``) is the
  store's fault: under the view's ``default`` missing policy it is filled and counted like a
  missing value; under ``reject`` the request is a 500 (a missing *entity* under ``reject``
  stays the client's 400). Either way a log line names the entity and the field.
- A request none of whose entities has a stored value (a flushed store, or every key evicted)
  is not answered from defaults alone: 503 + ``Retry-After``
  (``BERTH_TRANSFORMER_ALL_MISSING_STATUS``).
- Every answer says how many of its values were filled and which entities were unknown
  (:func:`unknown_entities`; the transformer puts them in headers and V2 parameters).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from berth.errors import BerthError, DependencyUnavailableError, short
from berth.observability import get_logger
from berth.serving.lograte import FAILURES
from berth_transformer import metrics
from berth_transformer.features.columns import ColumnPlan
from berth_transformer.features.policies import ViewPolicy

log = get_logger(__name__)
F32_MAX = float(np.finfo(np.float32).max)
MAX_LISTED = 16  # unknown entities named in one answer; the rest are counted


class StoreFaultError(BerthError):
    """The online store holds a value no feature can have, and the view rejects fills."""

    public_message = "the online store returned an unreadable value"


def _keys(view: str, plan: ColumnPlan, policies: Mapping[str, ViewPolicy]) -> tuple[str, ...]:
    policy = policies.get(view)
    return policy.join_keys if policy is not None else ()


def entity(
    view: str, row: int, plan: ColumnPlan, policies: Mapping[str, ViewPolicy], rows: Any
) -> str:
    """``driver_id=1003``: the entity of ``row`` in ``view`` (its join keys' values)."""
    keys = _keys(view, plan, policies)
    return ",".join(f"{k}={short(rows[k][row], 32)}" for k in keys if k in rows) or view


def screen(
    plan: ColumnPlan,
    values: np.ndarray,
    rows: Mapping[str, Sequence[Any]],
    policies: Mapping[str, ViewPolicy],
) -> np.ndarray:
    """``values`` with every unreadable stored value made missing (NaN), counted and logged;
    :class:`StoreFaultError` where the value's view rejects fills."""
    bad = np.abs(values) > F32_MAX  # inf too; NaN (missing) compares False
    if not bad.any():
        return values
    for view, cols in plan.by_view.items():
        cells = bad[:, cols]
        if not cells.any():
            continue
        metrics.FEATURES_UNREADABLE.labels(view).inc(int(cells.sum()))
        row, col = (int(i) for i in np.argwhere(cells)[0])
        where = entity(view, row, plan, policies, rows)
        field = plan.features[cols[col]].name
        if (suppressed := FAILURES.allow(f"unreadable stored value {view}")) is not None:
            log.error(
                "unreadable stored value",
                view=view,
                entity=where,
                field=field,
                values=int(cells.sum()),
                suppressed=suppressed,
            )
        policy = policies.get(view)
        if policy is not None and policy.missing == "reject":
            raise StoreFaultError(f"unreadable stored value of {field} for {where} in {view}")
    return np.where(bad, np.nan, values)


def _store_views(plan: ColumnPlan, policies: Mapping[str, ViewPolicy]) -> list[str]:
    """Views read from the store by entity (request-time views have no join keys)."""
    return [view for view in plan.by_view if _keys(view, plan, policies)]


def check_not_all_missing(
    plan: ColumnPlan, missing: np.ndarray, policies: Mapping[str, ViewPolicy]
) -> None:
    """503 when no entity of the request has any stored value."""
    if not missing.any():
        return
    cols = [c for view in _store_views(plan, policies) for c in plan.by_view[view]]
    if cols and missing[:, cols].all():
        metrics.ALL_MISSING.inc()
        raise DependencyUnavailableError(
            "features for these entities",
            f"no stored features for any of the {len(missing)} rows (flushed or evicted store?)",
        )


def unknown_entities(
    plan: ColumnPlan,
    missing: np.ndarray,
    rows: Mapping[str, Sequence[Any]],
    policies: Mapping[str, ViewPolicy],
) -> list[str]:
    """The distinct entities with no stored value in a view, in request order."""
    found: dict[str, None] = {}
    if not missing.any():
        return []
    for view in _store_views(plan, policies):
        for row in np.flatnonzero(missing[:, plan.by_view[view]].all(axis=1)):
            found[entity(view, int(row), plan, policies, rows)] = None
    return list(found)


def listed(entities: Sequence[str]) -> str:
    """The header / parameter value: at most ``MAX_LISTED`` entities, then how many more."""
    head = ";".join(entities[:MAX_LISTED])
    more = len(entities) - MAX_LISTED
    return f"{head};+{more} more" if more > 0 else head
