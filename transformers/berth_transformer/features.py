"""Online features: one batched read per request, the TTL check, the missing/stale policy.

A :class:`FeatureSource` returns values (NaN where missing) and event times in the
FeatureService's column order: :class:`~berth_transformer.redis_source.RedisSource` reads
Feast's Redis layout directly (the default where it can), :class:`FeastSource` calls Feast's SDK
(any online store). Feast's Python online path does not enforce a view's TTL (feast #1802,
#6821) and answers a missing entity with ``None``: :func:`apply_policies` checks every value's
event time against its view's TTL, applies the declared policy per view (fill the artifact's
default and count it, or reject the request) and returns the float32 model input.

``feast`` is imported lazily: it is slow to import and pulls torch in when torch is installed.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import redis.exceptions

from berth.errors import (
    ContractMismatchError,
    DeadlineExceededError,
    DependencyUnavailableError,
    InvalidInputError,
)
from berth.featurerepo import ContractFeature
from berth.observability import get_logger
from berth_transformer import metrics
from berth_transformer.schema import Candidates
from berth_transformer.settings import Policy, SourceKind

if TYPE_CHECKING:
    from feast import FeatureService, FeatureStore

log = get_logger(__name__)
TS_SUFFIX = "__ts"  # feast.online_response.TIMESTAMP_POSTFIX
ONLINE_STORE = "online store"
# What a read raises when the store is down: Redis (redis-py), SQLite, sockets.
_UNAVAILABLE = (redis.exceptions.RedisError, sqlite3.Error, OSError)


@dataclass(frozen=True)
class ServedFeature:
    """One model input column: where it comes from, its TTL, its fill value."""

    name: str
    view: str
    ttl_s: float | None
    default: float | None


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
    return values.astype(np.float32), report


def decode(proto: Any, wanted: frozenset[str]) -> dict[str, list[Any]]:
    """Feast's ``GetOnlineFeaturesResponse`` -> the wanted columns (and their ``__ts``).

    What ``OnlineResponse.to_dict(include_event_timestamps=True)`` returns for numeric
    features, without converting the columns nobody reads (a third of a read's time).
    """
    out: dict[str, list[Any]] = {}
    for name, vector in zip(proto.metadata.feature_names.val, proto.results, strict=True):
        if name not in wanted:
            continue
        column: list[Any] = []
        for value in vector.values:
            kind = value.WhichOneof("val")
            column.append(None if kind is None or kind == "null_val" else getattr(value, kind))
        out[name] = column
        out[name + TS_SUFFIX] = [ts.seconds for ts in vector.event_timestamps]
    return out


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


class FeatureSource(Protocol):
    """Where a read's values come from: ``fetch`` -> values (NaN where missing) and event
    seconds, ``[n, len(features)]`` in contract order."""

    async def fetch(self, rows: dict[str, list[Any]]) -> tuple[np.ndarray, np.ndarray]: ...

    async def close(self) -> None: ...


class FeastSource:
    """Feast's SDK: ``get_online_features`` for any online store Feast supports."""

    def __init__(
        self, store: FeatureStore, service: FeatureService, features: list[ServedFeature]
    ) -> None:
        self._store = store
        self._service = service
        self._features = features
        self._async = bool(store._get_provider().async_supported.online.read)
        self._tuned = not self._async
        self._wanted = frozenset(f.name for f in features)

    async def fetch(self, rows: dict[str, list[Any]]) -> tuple[np.ndarray, np.ndarray]:
        n = len(next(iter(rows.values())))
        if self._async:
            if not self._tuned:
                await self._tune_redis()
            response = await self._store.get_online_features_async(
                features=self._service, entity_rows=rows
            )
            return to_arrays(self._features, decode(response.proto, self._wanted), n)

        def read_sync() -> tuple[np.ndarray, np.ndarray]:
            response = self._store.get_online_features(features=self._service, entity_rows=rows)
            return to_arrays(self._features, decode(response.proto, self._wanted), n)

        # SQLite has no async read in Feast 0.67: a worker thread keeps the event loop free.
        return await asyncio.to_thread(read_sync)

    async def _tune_redis(self) -> None:
        """Fail fast while Redis is down, reconnect once it is back.

        redis-py's async client retries 3 times with 1-8 s backoff by default, which would
        turn "Redis is down" into a timeout. One immediate retry is enough to replace a
        connection that broke while Redis restarted. The client is created lazily by Feast,
        in this (the serving) event loop.
        """
        from feast.infra.online_stores.redis import RedisOnlineStore
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        online = self._store._get_provider().online_store
        if isinstance(online, RedisOnlineStore):
            client = await online._get_client_async(self._store.config.online_store)
            client.set_retry(Retry(NoBackoff(), retries=1))
        self._tuned = True

    async def close(self) -> None:
        return None


class FeatureReader:
    """Reads a FeatureService for a request's candidates: one batched read, bounded in time."""

    def __init__(
        self,
        source: FeatureSource,
        features: list[ServedFeature],
        policies: dict[str, ViewPolicy],
        timeout_s: float,
    ) -> None:
        self.source = source
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
            log.warning("online store read failed", error=f"{type(exc).__name__}: {exc}")
            raise DependencyUnavailableError(ONLINE_STORE) from None
        finally:
            metrics.FEATURE_READ_SECONDS.labels(outcome).observe(time.perf_counter() - started)
        return apply_policies(self._plan, values, stamps, time.time(), self._policies, rows)


def open_reader(
    store: FeatureStore,
    service_name: str,
    contract: Sequence[ContractFeature],
    defaults: Mapping[str, float] | None,
    missing_policy: Mapping[str, Policy],
    stale_policy: Mapping[str, Policy],
    timeout_s: float,
    source: SourceKind = "auto",
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
        _open_source(store, service_name, features, source), features, policies, timeout_s
    )


def _open_source(
    store: FeatureStore, service_name: str, features: list[ServedFeature], kind: SourceKind
) -> FeatureSource:
    from berth_transformer import redis_source

    if kind != "feast":
        plan = redis_source.plan_for(store, service_name, features)
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
