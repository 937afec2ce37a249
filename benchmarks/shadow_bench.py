"""What a shadow costs the primary: Berth's latency with every request mirrored vs without.

Two Berth transformers on the same primary predictor, over the same hop (Berth's: REST V2):
Berth's own (no shadow) and a second one with ``BERTH_TRANSFORMER_SHADOW_HOST`` set to a third
predictor (the same artifact: the deltas are 0 here; the cost is what is measured). The same
open-loop requests go to each in alternating points at one moderate rate (no queueing:
latency then measures the shadow's work, not a backlog); each side's percentiles are over all
its points' requests pooled.

In a cluster the shadow predictor has its own pod; on one machine it runs at niceness
``berth.local.SHADOW_NICE``, as ``berth up --shadow`` runs it, so its CPU yields to the
primary's. The transformer gathers mirrored requests for ``BERTH_TRANSFORMER_SHADOW_LINGER_MS``
(20) into one call, so its own extra work is a fraction of a request's.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.loadgen import LoadSpec, LoadWorker
from benchmarks.payloads import MODEL
from benchmarks.stacks import BerthStack
from berth.local import SHADOW_NICE
from berth.scrape import Metrics, scrape
from berth.stack import (
    READY_TIMEOUT_S,
    Ports,
    Stack,
    predictor_process,
    transformer_process,
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
    shadow_ports, ports = Ports.free(), Ports.free()
    url = ports.url
    shadow = predictor_process(
        MODEL, ws.artifact, shadow_ports, log_path=logs / "shadow-predictor.log", nice=SHADOW_NICE
    )
    # The same hop as Berth's own transformer (the "off" side), to the primary and the shadow.
    mirrored = transformer_process(
        MODEL,
        berth.predictor_ports.hop_target(berth.hop),
        ports,
        env=berth.transformer_env_for(
            BERTH_TRANSFORMER_SHADOW_HOST=shadow_ports.hop_target(berth.hop)
        ),
        log_path=logs / "berth-transformer-shadowed.log",
        predictor_protocol=berth.hop,
    )
    with Stack() as processes:
        processes.start("shadow", shadow).wait_ready(READY_TIMEOUT_S)
        processes.start("mirrored", mirrored).wait_ready(READY_TIMEOUT_S)
        points = _alternate(worker, {"off": berth.url, "on": url}, base, rate, rounds)
        metrics = scrape(url)
    return _summary(points, metrics, base.duration_s, rate, rounds)


def _alternate(
    worker: LoadWorker, targets: dict[str, str], base: LoadSpec, rate: float, rounds: int
) -> dict[str, list[dict[str, Any]]]:
    """Warm both targets, then ``rounds`` points each, alternating which goes first."""
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
    return points


def _summary(
    points: dict[str, list[dict[str, Any]]],
    metrics: Metrics,
    point_s: float,
    rate: float,
    rounds: int,
) -> dict[str, Any]:
    """Percentiles over each side's pooled latencies, the shadow's own counters, the ratios."""
    observed = metrics.total("berth_transformer_shadow_delta_count")
    dropped = metrics.total("berth_transformer_shadow_dropped_total")
    errors = metrics.total("berth_transformer_shadow_errors_total")

    pooled = {
        name: np.array([v for p in points[name] for v in p.pop("latencies_ms") or []])
        for name in points
    }

    def percentile(name: str, q: float) -> float:
        return round(float(np.percentile(pooled[name], q)), 3) if len(pooled[name]) else 0.0

    out: dict[str, Any] = {
        "rate": rate,
        "rounds": rounds,
        "point_s": point_s,
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
