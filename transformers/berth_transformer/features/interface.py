"""What every feature source implements: the reader's one dependency on where values live."""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np


class FeatureSource(Protocol):
    """Where a read's values come from: ``fetch`` -> values (NaN where missing) and event
    seconds, ``[n, len(features)]`` in contract order.

    Implementations: :class:`~berth_transformer.features.redis_source.RedisSource` (Feast's
    Redis layout, read directly) and :class:`~berth_transformer.features.feast_source.FeastSource`
    (Feast's SDK, any online store).
    """

    async def fetch(self, rows: dict[str, list[Any]]) -> tuple[np.ndarray, np.ndarray]: ...

    async def close(self) -> None: ...
