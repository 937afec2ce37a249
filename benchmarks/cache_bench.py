"""Would a prediction cache pay? A benchmark experiment only: nothing here ships.

The cache under study: a bounded in-process LRU in the transformer, keyed by the model version
and one feature row's bytes (the row Berth's reader builds from Redis plus the request's
fields), holding that row's score. A request skips the predictor only when every row hits.

Two traffic mixes, features read by Berth's own reader from the benchmark's Redis:

* ``benchmark`` -- the load generator's traffic: its 256 seeded requests, cycled;
* ``skewed`` -- customers drawn Zipf(1.2) over the customer range; a customer who comes back
  repeats their last request (same drivers, trip and hour: a refresh) with probability 0.5,
  else asks something new.

Reported per mix and capacity: row and whole-request hit rates, the measured CPU of a lookup
per request, and the predictor CPU it would save (whole-request hits x the predictor's CPU
per request measured end to end in the same run; the transformer's side of the hop is saved
too and not counted, so the saving is a lower bound).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import OrderedDict
from typing import Any

import numpy as np

from benchmarks import payloads
from benchmarks.features_bench import _berth_reader
from benchmarks.workspace import Workspace

CAPACITIES = (1_000, 10_000, 100_000)  # rows
VERSION = b"v1"


def skewed_requests(
    count: int, candidates: int, drivers: tuple[int, int], customers: tuple[int, int], seed: int
) -> list[list[dict[str, Any]]]:
    rng = random.Random(seed)
    np_rng = np.random.default_rng(seed)
    span = customers[1] - customers[0] + 1
    picks = (np_rng.zipf(1.2, count * 2) - 1) % span + customers[0]
    last: dict[int, list[dict[str, Any]]] = {}
    out = []
    for customer in picks[:count]:
        c = int(customer)
        if c in last and rng.random() < 0.5:
            out.append(last[c])
            continue
        request = payloads.ranking_requests(1, candidates, rng.randrange(1 << 30), drivers)[0]
        request = [{**row, "customer_id": c} for row in request]
        last[c] = request
        out.append(request)
    return out


def simulate(keys: list[list[bytes]], capacity: int) -> dict[str, Any]:
    """Replay ``keys`` (rows per request) through an LRU of ``capacity`` rows."""
    cache: OrderedDict[bytes, float] = OrderedDict()
    row_hits = rows = full = 0
    for request in keys:
        hits = 0
        for key in request:
            rows += 1
            if key in cache:
                cache.move_to_end(key)
                hits += 1
            else:
                cache[key] = 0.5
                if len(cache) > capacity:
                    cache.popitem(last=False)
        row_hits += hits
        full += hits == len(request)
    return {
        "capacity_rows": capacity,
        "row_hit_rate": round(row_hits / max(1, rows), 4),
        "request_hit_rate": round(full / max(1, len(keys)), 4),
    }


def lookup_cpu_ms(matrices: list[np.ndarray], capacity: int = 10_000) -> float:
    """CPU ms per request of keying every row (version + bytes) and one LRU pass."""
    cache: OrderedDict[bytes, float] = OrderedDict()
    started = time.process_time()
    for matrix in matrices:
        for row in matrix:
            key = VERSION + row.tobytes()
            if key in cache:
                cache.move_to_end(key)
            else:
                cache[key] = 0.5
                if len(cache) > capacity:
                    cache.popitem(last=False)
    return round(1000 * (time.process_time() - started) / max(1, len(matrices)), 5)


async def _matrices(ws: Workspace, pool: list[list[dict[str, Any]]]) -> list[np.ndarray]:
    from berth.artifact import read_metadata
    from berth.featurerepo import open_store

    store = open_store(ws.repo)
    defaults = {f.name: f.default for f in read_metadata(ws.artifact).features}
    make = _berth_reader(store, defaults, [], "auto")
    if make is None:
        raise RuntimeError("Berth's reader is not installed (berth_transformer)")
    read = make(pool)
    return [np.ascontiguousarray((await read(i))[0], dtype=np.float32) for i in range(len(pool))]


def run(
    ws: Workspace, candidates: int, requests: int, predictor_cpu_ms: float | None
) -> dict[str, Any]:
    ranges = ws.entity_ranges()
    drivers, customers = ranges["drivers"], ranges["customers"]
    bench_pool = payloads.ranking_requests(256, candidates, 0, drivers, customers)
    mixes = {
        "benchmark": [bench_pool[i % len(bench_pool)] for i in range(requests)],
        "skewed": skewed_requests(requests, candidates, drivers, customers, seed=1),
    }
    out: dict[str, Any] = {"requests_per_mix": requests, "predictor_cpu_ms": predictor_cpu_ms}
    for name, traffic in mixes.items():
        distinct = {id(r): r for r in traffic}
        order = list(distinct)
        matrices = dict(
            zip(order, asyncio.run(_matrices(ws, list(distinct.values()))), strict=True)
        )
        keys = [[VERSION + row.tobytes() for row in matrices[id(r)]] for r in traffic]
        lookup = lookup_cpu_ms([matrices[id(r)] for r in traffic])
        runs = [simulate(keys, c) for c in CAPACITIES]
        for entry in runs:
            saved = (predictor_cpu_ms or 0.0) * entry["request_hit_rate"]
            entry["predictor_cpu_saved_ms_per_request"] = round(saved, 4)
            entry["net_saved_ms_per_request"] = round(saved - lookup, 4)
        out[name] = {
            "distinct_requests": len(distinct),
            "lookup_cpu_ms": lookup,
            "by_capacity": runs,
        }
    return out
