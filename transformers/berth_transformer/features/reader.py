"""Online features for a request: one batched read, bounded in time, then the store-fault screen
and each view's missing/stale policy.

:func:`open_reader` picks the source at start: the direct Redis source
(:mod:`.redis_source`, the default where the FeatureService can be read that way) or Feast's
SDK (:mod:`.feast_source`, any online store).
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import redis.exceptions

from berth.errors import ContractMismatchError, DeadlineExceededError, DependencyUnavailableError
from berth.featurerepo import ContractFeature
from berth.observability import get_logger
from berth.serving.lograte import FAILURES
from berth_transformer import metrics
from berth_transformer.features import redis_plan, redis_source, store_faults
from berth_transformer.features.columns import ColumnPlan, ServedFeature, served_features
from berth_transformer.features.feast_source import FeastSource
from berth_transformer.features.interface import FeatureSource
from berth_transformer.features.policies import ReadReport, ViewPolicy, apply_policies
from berth_transformer.schema import Candidates
from berth_transformer.settings import Policy, SourceKind

if TYPE_CHECKING:
    from feast import FeatureStore

log = get_logger(__name__)
ONLINE_STORE = "online store"
# What a read raises when the store is down: Redis (redis-py), SQLite, sockets.
_UNAVAILABLE = (redis.exceptions.RedisError, sqlite3.Error, OSError)


class FeatureReader:
    """Reads a FeatureService for a request's candidates: one batched read, bounded in time."""

    def __init__(
        self,
        source: FeatureSource,
        features: list[ServedFeature],
        policies: dict[str, ViewPolicy],
        timeout_s: float,
        all_missing_status: int = 503,
    ) -> None:
        self.source = source
        self._all_missing_status = all_missing_status
        self.features = features
        self._plan = ColumnPlan.of(features)
        self._policies = policies
        self._timeout_s = timeout_s

    async def read(self, candidates: Candidates) -> tuple[np.ndarray, ReadReport]:
        """The float32 model input, one row per candidate, in the FeatureService's order."""
        rows = candidates.entity_rows()
        started = time.perf_counter()
        outcome = "ok"
        try:
            async with asyncio.timeout(self._timeout_s):
                values, stamps = await self.source.fetch(rows)
        except TimeoutError:
            outcome = "timeout"
            raise DeadlineExceededError(ONLINE_STORE) from None
        except _UNAVAILABLE as exc:
            outcome = "unavailable"
            if (suppressed := FAILURES.allow("online store read failed")) is not None:
                error = f"{type(exc).__name__}: {exc}"
                log.warning("online store read failed", error=error, suppressed=suppressed)
            raise DependencyUnavailableError(ONLINE_STORE) from None
        finally:
            metrics.FEATURE_READ_SECONDS.labels(outcome).observe(time.perf_counter() - started)
        plan, policies = self._plan, self._policies
        values = store_faults.screen(plan, values, rows, policies)
        missing = np.isnan(values)
        if self._all_missing_status == 503:
            store_faults.check_not_all_missing(plan, missing, policies)
        matrix, report = apply_policies(plan, values, stamps, time.time(), policies, rows)
        report.unknown = store_faults.unknown_entities(plan, missing, rows, policies)
        return matrix, report


def open_reader(
    store: FeatureStore,
    service_name: str,
    contract: Sequence[ContractFeature],
    defaults: Mapping[str, float] | None,
    missing_policy: Mapping[str, Policy],
    stale_policy: Mapping[str, Policy],
    timeout_s: float,
    source: SourceKind = "auto",
    all_missing_status: int = 503,
) -> FeatureReader:
    """A reader over ``store``; unknown views in the policy maps refuse to start.

    ``source``: ``redis`` reads Feast's Redis layout directly (refuses to start when the
    FeatureService cannot be read that way), ``feast`` uses Feast's SDK, ``auto`` takes
    ``redis`` when it can and says why not when it cannot.
    """
    views = list(dict.fromkeys(f.view for f in contract))
    for name, declared in (("MISSING_POLICY", missing_policy), ("STALE_POLICY", stale_policy)):
        unknown = sorted(set(declared) - set(views))
        if unknown:
            raise ContractMismatchError(
                f"BERTH_TRANSFORMER_{name} names views {unknown} that {service_name} does not "
                f"use (it uses {views})"
            )
    policies = {
        view: ViewPolicy(
            missing=missing_policy.get(view, "default"),
            stale=stale_policy.get(view, "default"),
            join_keys=tuple(_join_keys(store, view)),
        )
        for view in views
    }
    features = served_features(contract, defaults)
    return FeatureReader(
        _open_source(store, service_name, features, source),
        features,
        policies,
        timeout_s,
        all_missing_status,
    )


def _open_source(
    store: FeatureStore, service_name: str, features: list[ServedFeature], kind: SourceKind
) -> FeatureSource:
    if kind != "feast":
        plan = redis_plan.plan_for(store, service_name, features)
        if not isinstance(plan, str):
            log.info(
                "feature source: direct Redis reads",
                redis_type=store.config.online_store.redis_type.value,
                hmget_per_entity=len(plan.entities),
            )
            return redis_source.open_source(store, plan)
        if kind == "redis":
            raise ContractMismatchError(
                f"BERTH_TRANSFORMER_FEATURE_SOURCE=redis, but {service_name} cannot be read "
                f"directly: {plan}"
            )
        log.info("feature source: Feast SDK", reason=plan)
    return FeastSource(store, store.get_feature_service(service_name), features)


def _join_keys(store: FeatureStore, view: str) -> list[str]:
    try:
        return list(store.get_feature_view(view).join_keys)
    except Exception:  # on-demand views have no entities: name the feature instead
        return []
