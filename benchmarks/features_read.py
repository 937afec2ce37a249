"""One request's feature read, every reader: on one Redis (:mod:`benchmarks.features_bench`),
then on a Redis Cluster (:mod:`benchmarks.features_cluster`)."""

from __future__ import annotations

import asyncio
from typing import Any

from benchmarks import features_cluster
from benchmarks.features_bench import compare_reads, ratios
from benchmarks.workspace import Workspace


def run(ws: Workspace, candidates: int, reads: int, cluster: bool = True) -> dict[str, Any]:
    """The plain-Redis rows, then (``cluster``) the Redis Cluster rows under ``"cluster"``
    (``benchmarks.features_cluster``)."""
    result = asyncio.run(compare_reads(ws, candidates, reads))
    result["ratios_p50"] = ratios(result)
    if cluster:
        result["cluster"] = features_cluster.run(ws, candidates, reads)
    return result
