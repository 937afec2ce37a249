"""Where one request's time goes, from the servers' own Prometheus histograms.

``N`` sequential requests (one in flight: no queueing), then the difference of every
``*_seconds`` histogram's ``_sum`` / ``_count`` on each server's ``/metrics``: the mean time of
each stage it records (KServe's ``request_preprocess/predict/postprocess_seconds`` on both
stacks; Berth's own feature read, predictor call, queue wait and ORT run), beside the client's
own p50.
"""

from __future__ import annotations

import statistics
import time
import urllib.request
from typing import Any

from benchmarks import payloads
from berth import scrape as prometheus


def scrape(base_url: str) -> dict[str, float]:
    """``{series with labels: value}`` of every histogram ``_sum`` / ``_count`` line."""
    return {
        prometheus.series(s): float(s.value)
        for s in prometheus.scrape(base_url)
        if s.name.endswith(("_seconds_sum", "_seconds_count"))
    }


def mean_ms(before: dict[str, float], after: dict[str, float]) -> dict[str, dict[str, float]]:
    """Mean milliseconds and count of each ``*_seconds`` series that moved."""
    out: dict[str, dict[str, float]] = {}
    for series, total in after.items():
        name = series.split("{", 1)[0]
        if not name.endswith("_seconds_sum"):
            continue
        count_series = series.replace("_seconds_sum", "_seconds_count", 1)
        count = after.get(count_series, 0.0) - before.get(count_series, 0.0)
        if count <= 0:
            continue
        label = series.replace("_seconds_sum", "", 1)
        out[label] = {
            "mean_ms": round(1000 * (total - before.get(series, 0.0)) / count, 3),
            "count": count,
        }
    return out


def breakdown(
    url: str, metric_urls: dict[str, str], requests: int, candidates: int = 10
) -> dict[str, Any]:
    """``requests`` sequential V1 requests to ``url``; client p50 and each server's stages."""
    bodies = [payloads.v1_body(r) for r in payloads.ranking_requests(64, candidates, seed=1)]
    endpoint = url + payloads.rest_path("v1")

    def post(i: int) -> None:
        request = urllib.request.Request(
            endpoint, data=bodies[i % len(bodies)], headers={"content-type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as resp:
            resp.read()

    for i in range(10):
        post(i)
    before = {name: scrape(u) for name, u in metric_urls.items()}
    latencies = []
    for i in range(requests):
        started = time.perf_counter()
        post(i)
        latencies.append(time.perf_counter() - started)
    after = {name: scrape(u) for name, u in metric_urls.items()}
    return {
        "requests": requests,
        "client_p50_ms": round(1000 * statistics.median(latencies), 3),
        "servers": {name: mean_ms(before[name], after[name]) for name in metric_urls},
    }
