"""Which FeatureServices the direct Redis source can read, and its read plan for one.

:func:`plan_for` decides at start whether a FeatureService can be read straight from Feast's
Redis layout (plain Redis or Redis Cluster, one join key per view, on-demand views that pass
request fields through unchanged) and returns the plan -- one ``HMGET`` per distinct entity,
all the views of that entity in one command -- or says why not; the transformer then keeps
Feast's SDK. Hash fields come from Feast's own helpers (:mod:`.feast_compat`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from berth_transformer.features import feast_compat
from berth_transformer.features.columns import ServedFeature

if TYPE_CHECKING:
    from feast import FeatureStore


@dataclass(frozen=True)
class EntityPlan:
    """One HMGET per distinct value of ``join_key``: its fields fill ``columns`` of the matrix,
    the ``_ts:<view>`` fields (one per view, after the features) fill the stamps."""

    join_key: str
    fields: tuple[bytes, ...]
    columns: tuple[int, ...]  # matrix column of each feature field, in field order
    ts_columns: tuple[tuple[int, ...], ...]  # per view: the matrix columns it stamps


@dataclass(frozen=True)
class SourcePlan:
    entities: tuple[EntityPlan, ...]
    request_columns: tuple[tuple[int, str], ...]  # (matrix column, request field)
    width: int


def plan_for(
    store: FeatureStore, service_name: str, features: Sequence[ServedFeature]
) -> SourcePlan | str:
    """The read plan for ``features`` (the FeatureService's columns, in order), or the reason
    the service needs Feast's SDK path."""
    from feast.infra.online_stores.redis import RedisOnlineStore, RedisType

    config = store.config
    online = feast_compat.online_store(store)
    if not isinstance(online, RedisOnlineStore):
        return f"online store is {type(online).__name__}, not Redis"
    if config.online_store.redis_type not in (RedisType.redis, RedisType.redis_cluster):
        kind = config.online_store.redis_type.value
        return f"redis_type {kind} (plain redis and redis_cluster are direct)"

    batch = {view.name: view for view in store.list_feature_views()}
    by_key: dict[str, list[tuple[int, ServedFeature]]] = {}
    request_columns: list[tuple[int, str]] = []
    why_not = _why_not_passthrough(store, {f.view for f in features if f.view not in batch})
    if why_not:
        return why_not
    for j, feature in enumerate(features):
        view = batch.get(feature.view)
        if view is None:  # a pass-through on-demand view: the request field of that name
            request_columns.append((j, feature.name))
            continue
        if len(view.join_keys) != 1:
            return f"view {view.name} has a composite entity key {view.join_keys}"
        by_key.setdefault(view.join_keys[0], []).append((j, feature))

    entities = []
    for join_key, columns in by_key.items():
        fields: list[bytes] = []
        views: dict[str, list[int]] = {}
        for j, feature in columns:
            fv_name = feast_compat.versioned_view_name(batch[feature.view], store)
            fields.append(
                feast_compat.hset_field(online, batch[feature.view], feature.name, fv_name)
            )
            views.setdefault(fv_name, []).append(j)
        fields += [f"_ts:{fv_name}".encode() for fv_name in views]
        entities.append(
            EntityPlan(
                join_key=join_key,
                fields=tuple(fields),
                columns=tuple(j for j, _ in columns),
                ts_columns=tuple(tuple(cols) for cols in views.values()),
            )
        )
    return SourcePlan(tuple(entities), tuple(request_columns), len(features))


def _why_not_passthrough(store: FeatureStore, views: set[str]) -> str | None:
    """None when every on-demand view in ``views`` returns its request fields unchanged, under
    their own names (probed with distinct values); else why one does not."""
    for name in sorted(views):
        try:
            odfv = store.get_on_demand_feature_view(name)
        except Exception:
            return f"view {name} is neither a feature view nor an on-demand view"
        if odfv.source_feature_view_projections:
            return f"on-demand view {name} reads feature views"
        fields = [f.name for s in odfv.source_request_sources.values() for f in s.schema]
        outputs = [f.name for f in odfv.features]
        if odfv.mode != "python" or not set(outputs) <= set(fields):
            return f"on-demand view {name} computes features"
        probe = {field: [i + 0.25] for i, field in enumerate(fields)}
        udf = getattr(odfv.feature_transformation, "udf", None)
        if udf is None:
            return f"on-demand view {name} has no python transformation"
        try:
            result = udf(dict(probe))
        except Exception as exc:
            return f"on-demand view {name} failed a probe: {type(exc).__name__}"
        if any(list(result.get(o, [])) != probe[o] for o in outputs):
            return f"on-demand view {name} transforms its inputs"
    return None
