"""Point-in-time features for entity rows: Feast's ``get_historical_features`` over the
FeatureService, checked against the artifact as the transformer checks the predictor.

A value Feast cannot give (no row of the entity at or before the timestamp within the view's
TTL) is filled with the artifact's training median, as the online path fills a missing or
stale value by default; ``filled_values`` counts them per row.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from berth.artifact import ArtifactMetadata
from berth.batch.entities import TIMESTAMP, BatchInputError, EntitySchema
from berth.contract import artifact_model, differences
from berth.featurerepo import ContractFeature, apply_repo, open_store, service_contract

if TYPE_CHECKING:
    from feast import FeatureService, FeatureStore


@dataclass(frozen=True)
class Source:
    """Where a projection's features come from: a feature view joined on ``keys``, or an
    on-demand view computed from request fields."""

    name: str
    features: list[str]
    keys: list[str]
    on_demand: Any = None  # feast OnDemandFeatureView
    inputs: list[str] | None = None


@dataclass
class OfflineFeatures:
    """A FeatureService on an applied feature repo, ready to join entity rows."""

    store: FeatureStore
    service: FeatureService
    contract: list[ContractFeature]
    schema: EntitySchema
    sources: list[Source]
    defaults: np.ndarray

    def join(self, entities: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """(float32 model input ``[n, features]``, values filled per row) for ``entities``.

        One point-in-time join per feature view on the distinct (join keys, timestamp) rows:
        Feast's file offline store collapses entity rows that share a view's keys and
        timestamp (feast/infra/offline_stores/dask.py, ``_drop_duplicates``), so each view
        gets unique rows and the answers are merged back onto every row.
        """
        columns: dict[str, np.ndarray] = {}
        for source in self.sources:
            columns.update(self._source_columns(source, entities))
        values = np.column_stack([columns[f.name] for f in self.contract]).astype(np.float64)
        missing = np.isnan(values)
        values = np.where(missing, self.defaults, values)
        return values.astype(np.float32), missing.sum(axis=1).astype(np.int32)

    def _source_columns(self, source: Source, entities: pd.DataFrame) -> dict[str, np.ndarray]:
        import pyarrow as pa

        if source.on_demand is not None:
            request = pa.Table.from_pandas(entities[source.inputs], preserve_index=False)
            out = source.on_demand.transform_arrow(request, full_feature_names=False)
            return {n: out.column(n).to_numpy(zero_copy_only=False) for n in source.features}
        on = [*source.keys, TIMESTAMP]
        rows = entities[on].astype({TIMESTAMP: "datetime64[ns, UTC]"})
        refs = [f"{source.name}:{n}" for n in source.features]
        joined = self.store.get_historical_features(
            entity_df=rows.drop_duplicates(), features=refs
        ).to_df()
        joined = joined.astype({TIMESTAMP: "datetime64[ns, UTC]"})[[*on, *source.features]]
        merged = rows.merge(joined, on=on, how="left", validate="many_to_one")
        return {n: merged[n].to_numpy(dtype=np.float64, na_value=np.nan) for n in source.features}


def open_offline(
    repo: Path, yaml_file: Path, service_name: str, meta: ArtifactMetadata
) -> OfflineFeatures:
    """Apply the repo, read the FeatureService (a :class:`BatchInputError` naming it when
    absent or when the artifact was not built for it)."""
    from feast.errors import FeatureServiceNotFoundException

    apply_repo(repo, yaml_file)
    store = open_store(repo, yaml_file)
    try:
        service = store.get_feature_service(service_name)
    except FeatureServiceNotFoundException as exc:
        raise BatchInputError(
            f"FeatureService {service_name!r} is not in the feature repo {repo}",
            field="feature_service",
        ) from exc
    contract = service_contract(store, service_name)
    problems = differences(service_name, contract, artifact_model(meta), meta)
    if problems:
        raise BatchInputError(
            f"the model {meta.name} {meta.version} does not take FeatureService "
            f"{service_name!r}: " + "; ".join(problems),
            field="feature_service",
        )
    defaults = {f.name: f.default for f in meta.features}
    schema, sources = entity_schema(store, service, repo)
    return OfflineFeatures(
        store=store,
        service=service,
        contract=contract,
        schema=schema,
        sources=sources,
        defaults=np.array([defaults[f.name] for f in contract]),
    )


def entity_schema(
    store: FeatureStore, service: FeatureService, repo: Path
) -> tuple[EntitySchema, list[Source]]:
    """Join keys of the service's feature views (with their file sources) and the fields of
    its request sources; where each projection's features come from."""
    keys: dict[str, list[Path]] = {}
    request: list[str] = []
    sources: list[Source] = []
    views: dict[str, Any] = {v.name: v for v in store.list_feature_views()}
    for projection in service.feature_view_projections:
        names = [f.name for f in projection.features]
        view = views.get(projection.name)
        if view is None:
            odfv = store.get_on_demand_feature_view(projection.name)
            inputs = [f.name for r in odfv.source_request_sources.values() for f in r.schema]
            request += [f for f in inputs if f not in request]
            sources.append(Source(projection.name, names, [], odfv, inputs))
            continue
        path = getattr(view.batch_source, "path", None)
        view_keys = [projection.join_key_map.get(c.name, c.name) for c in view.entity_columns]
        for key in view_keys:
            files = keys.setdefault(key, [])
            if path and "://" not in str(path):
                files.append(Path(path) if Path(path).is_absolute() else repo / path)
        sources.append(Source(projection.name, names, view_keys))
    if TIMESTAMP in keys or TIMESTAMP in request:
        raise BatchInputError(f"{TIMESTAMP} cannot be a join key or request field")
    return EntitySchema(join_keys=keys, request_fields=request), sources
