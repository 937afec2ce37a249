"""Feast's SDK as a feature source: ``get_online_features`` for any online store Feast supports.

Used where the direct Redis source cannot read a FeatureService (another online store, a
composite key, an on-demand view that computes). ``feast`` is imported lazily.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import numpy as np

from berth_transformer.features import feast_compat
from berth_transformer.features.columns import TS_SUFFIX, ServedFeature, to_arrays

if TYPE_CHECKING:
    from feast import FeatureService, FeatureStore


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


class FeastSource:
    """Feast's SDK: ``get_online_features`` for any online store Feast supports."""

    def __init__(
        self, store: FeatureStore, service: FeatureService, features: list[ServedFeature]
    ) -> None:
        self._store = store
        self._service = service
        self._features = features
        self._async = feast_compat.async_online_read(store)
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

        online = feast_compat.online_store(self._store)
        if isinstance(online, RedisOnlineStore):
            client = await feast_compat.async_redis_client(online, self._store)
            client.set_retry(Retry(NoBackoff(), retries=1))
        self._tuned = True

    async def close(self) -> None:
        return None
