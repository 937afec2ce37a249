"""What a shadow costs the primary: Berth's latency with every request mirrored vs without.

Two Berth transformers on the same primary predictor: Berth's own (no shadow) and a second
one with ``BERTH_TRANSFORMER_SHADOW_HOST`` set to a third predictor (the same artifact: the
deltas are 0 here; the cost is what is measured). The same open-loop requests go to each in
alternating points at one moderate rate (no queueing: latency then measures the shadow's
work, not a backlog); each side's percentiles are over all its points' requests pooled.

In a cluster the shadow predictor has its own pod; on one machine it runs at niceness
``berth.local.SHADOW_NICE``, as ``berth up --shadow`` runs it, so its CPU yields to the
primary's. The transformer gathers mirrored requests for ``BERTH_TRANSFORMER_SHADOW_LINGER_MS``
(20) into one call, so its own extra work is a fraction of a request's.
"""

from __future__ import annotations

import contextlib
import os
import urllib.request
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.loadgen import LoadSpec, LoadWorker
from benchmarks.payloads import MODEL
from benchmarks.stacks import PROJECT_ROOT, READY_TIMEOUT_S, BerthStack
from berth.local import SHADOW_NICE
from berth.testing import LOOPBACK, ServerProcess, free_port


def _metric(url: str, name: str) -> float:
    with urllib.request.urlopen(f"{url}/metrics", timeout=5) as response:
        text = response.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name) and not line.startswith("#")
    )


def run(
    worker: LoadWorker,
    berth: BerthStack,
    logs: Path,
    base: LoadSpec,
    rate: float,
    rounds: int,
) -> dict[str, Any]:
    ws = berth.ws
    shadow_http, shadow_grpc = free_port(), free_port()
    http, grpc = free_port(), free_port()
    url = f"http://{LOOPBACK}:{http}"
    shadow = ServerProcess(
        [
            *("-m", "berth_predictor", "--model_name", MODEL, "--model_dir", str(ws.artifact)),
            *("--http_port", str(shadow_http), "--grpc_port", str(shadow_grpc)),
        ],
        f"http://{LOOPBACK}:{shadow_http}/v2/models/{MODEL}/ready",
        log_path=logs / "shadow-predictor.log",
        cwd=PROJECT_ROOT,
    )
    mirrored = ServerProcess(
        [
            *("-m", "berth_transformer", "--model_name", MODEL),
            *("--predictor_host", f"{LOOPBACK}:{berth.predictor_grpc}"),
            *("--http_port", str(http), "--grpc_port", str(grpc)),
        ],
        f"{url}/v2/models/{MODEL}/ready",
        env={
            **ws.redis_env,
            "BERTH_TRANSFORMER_FEATURE_REPO": str(ws.repo),
            "BERTH_TRANSFORMER_MODEL_METADATA": str(ws.artifact / "metadata.json"),
            "BERTH_TRANSFORMER_SHADOW_HOST": f"{LOOPBACK}:{shadow_grpc}",
        },
        log_path=logs / "berth-transformer-shadowed.log",
        cwd=PROJECT_ROOT,
    )
    try:
        shadow.start()
        assert shadow.proc is not None
        with contextlib.suppress(OSError):  # its threads, made after this, inherit it
            os.setpriority(os.PRIO_PROCESS, shadow.proc.pid, SHADOW_NICE)
        shadow.wait_ready(READY_TIMEOUT_S)
        mirrored.start().wait_ready(READY_TIMEOUT_S)
        targets = {"off": berth.url, "on": url}
        points: dict[str, list[dict[str, Any]]] = {"off": [], "on": []}
        for target in targets.values():  # warm both
            worker.run(replace(base, target=target, rate=rate, duration_s=1.0, label="warm"))
        for r in range(rounds):
            order = ("off", "on") if r % 2 == 0 else ("on", "off")
            for name in order:
                spec = replace(
                    base,
                    target=targets[name],
                    rate=rate,
                    label=f"shadow-{name}",
                    keep_latencies=True,
                )
                points[name].append(worker.run(spec))
        observed = _metric(url, "berth_transformer_shadow_delta_count")
        dropped = _metric(url, "berth_transformer_shadow_dropped_total")
        errors = _metric(url, "berth_transformer_shadow_errors_total")
    finally:
        mirrored.stop()
        shadow.stop()

    pooled = {
        name: np.array([v for p in points[name] for v in p.pop("latencies_ms") or []])
        for name in points
    }

    def percentile(name: str, q: float) -> float:
        return round(float(np.percentile(pooled[name], q)), 3) if len(pooled[name]) else 0.0

    out: dict[str, Any] = {
        "rate": rate,
        "rounds": rounds,
        "point_s": base.duration_s,
        "requests": {name: len(pooled[name]) for name in points},
        "p50_ms": {name: percentile(name, 50) for name in points},
        "p99_ms": {name: percentile(name, 99) for name in points},
        "p99_per_point_ms": {
            name: [p["latency_ms"].get("p99") for p in points[name]] for name in points
        },
        "errors": {name: sum(sum(p["errors"].values()) for p in points[name]) for name in points},
        "shadow_rows_compared": observed,
        "shadow_dropped": dropped,
        "shadow_errors": errors,
        "points": points,
    }
    out["p99_on_over_off"] = round(out["p99_ms"]["on"] / out["p99_ms"]["off"], 3)
    out["p50_on_over_off"] = round(out["p50_ms"]["on"] / out["p50_ms"]["off"], 3)
    return out
