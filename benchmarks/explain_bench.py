"""What ``:explain`` costs, and what it costs ``:predict``.

One real stack (redis-server, predictor, transformer; ``berth.loadtest.ServingStack``) over a
fresh copy of the feature repo with generated data and the given artifact.

- Cost: explanations of 1, 10 and 50 candidates, sequential; per request the wall time, and
  per explained candidate the predictor rows (the transformer reports them) and milliseconds.
- Isolation: one client sends ``:predict`` (10 candidates) back to back for ``seconds``, alone
  and then while ``explainers`` clients send ``:explain`` (10 candidates) back to back; the
  p50/p99 of the predictions side by side, and how many explanations were refused (429 at
  ``EXPLAIN_MAX_INFLIGHT``).
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

from berth.loadtest import MODEL, instances
from tests.support.serving import ServingStack


def _post(url: str, body: dict[str, Any]) -> tuple[int, dict[str, Any], float]:
    data = json.dumps(body).encode()
    request = urllib.request.Request(url, data, {"Content-Type": "application/json"})
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=60) as resp:
            answer = json.loads(resp.read())
            status = resp.status
    except urllib.error.HTTPError as err:
        status, answer = err.code, {}
    return status, answer, (time.perf_counter() - started) * 1000


def _cost(stack: ServingStack, candidates: int, requests: int) -> dict[str, Any]:
    url = f"{stack.url}/v1/models/{MODEL}:explain"
    ms, rows, methods = [], [], {"exact": 0, "sampled": 0}
    for i in range(requests):
        status, body, elapsed = _post(url, instances(candidates, first_driver=1001 + i % 20))
        if status != 200:
            raise RuntimeError(f":explain answered {status}")
        ms.append(elapsed)
        for explanation in body["explanations"]:
            rows.append(explanation["predictor_rows"])
            methods[explanation["method"]] += 1
    return {
        "candidates": candidates,
        "requests": requests,
        "ms_per_request_p50": round(float(np.median(ms)), 2),
        "ms_per_candidate": round(float(np.median(ms)) / candidates, 3),
        "predictor_rows_per_candidate": round(float(np.mean(rows)), 1),
        "methods": methods,
    }


def _loop(
    url: str, body: dict[str, Any], stop: threading.Event, out: list[tuple[int, float]]
) -> None:
    while not stop.is_set():
        status, _, elapsed = _post(url, body)
        out.append((status, elapsed))


def _predict_latency(stack: ServingStack, seconds: float, explainers: int) -> dict[str, Any]:
    stop = threading.Event()
    explained: list[tuple[int, float]] = []
    threads = [
        threading.Thread(
            target=_loop,
            args=(f"{stack.url}/v1/models/{MODEL}:explain", instances(10), stop, explained),
        )
        for _ in range(explainers)
    ]
    for thread in threads:
        thread.start()
    predicted: list[tuple[int, float]] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        status, _, elapsed = _post(stack.infer_url, instances(10))
        predicted.append((status, elapsed))
    stop.set()
    for thread in threads:
        thread.join(120)
    ok = [ms for status, ms in predicted if status == 200]
    return {
        "explain_clients": explainers,
        "predictions": len(predicted),
        "predictions_ok": len(ok),
        "predict_p50_ms": round(float(np.percentile(ok, 50)), 2),
        "predict_p99_ms": round(float(np.percentile(ok, 99)), 2),
        "explanations_ok": sum(1 for status, _ in explained if status == 200),
        "explanations_refused_429": sum(1 for status, _ in explained if status == 429),
    }


def run(repo: Path, artifact: Path, root: Path, seconds: float, explainers: int) -> dict[str, Any]:
    with ServingStack(repo, artifact, root) as stack:
        _post(stack.infer_url, instances(10))  # warm the connections
        cost = [_cost(stack, n, 10 if n > 10 else 20) for n in (1, 10, 50)]
        alone = _predict_latency(stack, seconds, 0)
        loaded = _predict_latency(stack, seconds, explainers)
    return {
        "explain_cost": cost,
        "predict_alone": alone,
        "predict_under_explain": loaded,
        "p99_ratio": round(loaded["predict_p99_ms"] / alone["predict_p99_ms"], 2),
    }


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "## `:explain` cost (sequential requests)",
        "",
        "| candidates | ms / request (p50) | ms / candidate | predictor rows / candidate "
        "| exact | sampled |",
        "|---|---|---|---|---|---|",
    ]
    for c in result["explain_cost"]:
        lines.append(
            f"| {c['candidates']} | {c['ms_per_request_p50']} | {c['ms_per_candidate']} | "
            f"{c['predictor_rows_per_candidate']} | {c['methods']['exact']} | "
            f"{c['methods']['sampled']} |"
        )
    a, b = result["predict_alone"], result["predict_under_explain"]
    lines += [
        "",
        "## `:predict` latency with and without explanations (one predict client, 10 candidates)",
        "",
        "| explain clients | predictions | p50 ms | p99 ms | explanations ok | explanations 429 |",
        "|---|---|---|---|---|---|",
        *(
            f"| {r['explain_clients']} | {r['predictions_ok']}/{r['predictions']} | "
            f"{r['predict_p50_ms']} | {r['predict_p99_ms']} | {r['explanations_ok']} | "
            f"{r['explanations_refused_429']} |"
            for r in (a, b)
        ),
        "",
        f"p99 under explain load / alone: {result['p99_ratio']}",
    ]
    return "\n".join(lines) + "\n"
