"""Sweep: raise the offered rate until p99 breaks its bounds; the last rate that held is the answer.

A point *holds* a bound when its p99 (from intended send times) is within it, at most
``max_error_ratio`` of its requests failed, and the server answered at least ``min_achieved``
of the offered rate. The rate grows by ``factor`` until a point fails the loosest bound (or
``max_points`` growth points are spent, plus ``extend`` more while every point held); then, for
each bound, ``refine`` more bisection points between its highest holding and its lowest failing
rate narrow the answer. A bound that no point held is first probed downward (``probe_down``
points, each at half the lowest rate tried, not below ``min_rps``): a stack slow at the start
rate gets a measured rate, or a measured "none" (0). One sweep therefore answers every bound
(e.g. 10, 25 and 50 ms) from one latency-vs-load curve. If the first point already fails the
loosest bound the rate halves. The answer for a bound is the achieved rate of the highest
offered rate that held it (a lower rate may still have failed: that is in ``points``).

An answer with no failing point above it is *capped* (``capped``): the sweep's top rate, a lower
bound, not a measurement. Each bound also says why its first failing point failed (``failed_on``)
and how many cores the load generator used there (``generator_cores``): near one core, the
generator (not the server) may be what broke.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

from benchmarks.cpu import CpuMeter
from benchmarks.loadgen import LoadSpec, LoadWorker


@dataclass(frozen=True)
class SweepConfig:
    start_rps: float = 50.0
    factor: float = 1.5
    refine: int = 2
    probe_down: int = 2  # per bound no point held: points at half the lowest rate tried
    max_points: int = 10  # growth points (refinement adds ``refine`` per bound)
    extend: int = 4  # growth points past ``max_points`` while every point so far held
    bounds_ms: tuple[float, ...] = (10.0,)
    max_error_ratio: float = 0.001
    min_achieved: float = 0.95
    min_rps: float = 2.0
    cooldown_s: float = 1.0  # after an overloaded point, at least; then until servers idle
    min_requests: int = 0  # a point lasts at least this many requests (up to max_point_s)
    max_point_s: float = 10.0

    @property
    def loosest(self) -> float:
        return max(self.bounds_ms)


def holds(point: dict[str, Any], cfg: SweepConfig, bound_ms: float) -> bool:
    rate = point["spec"]["rate"]
    p99 = point["latency_ms"].get("p99", float("inf"))
    errors = sum(point["errors"].values())
    return (
        p99 <= bound_ms
        and errors <= cfg.max_error_ratio * max(1, point["sent"])
        and point["achieved_rps"] >= cfg.min_achieved * rate
    )


def measure(worker: LoadWorker, meter: CpuMeter, spec: LoadSpec, cores: int) -> dict[str, Any]:
    """One point, with CPU seconds per completed request of every metered process (ms)."""
    before = meter.snapshot()
    point = worker.run(spec)
    after = meter.snapshot()
    delta = CpuMeter.delta(before, after)
    done = max(1, point["completed_total"])
    ours = sum(v for k, v in delta.items() if k != "machine")
    wall = max(point["wall_s"], 1e-6)
    cpu = {k: round(1000 * v / done, 3) for k, v in delta.items() if k != "machine"}
    servers = [k for k in delta if k not in ("machine", "generator", "redis")]
    cpu["servers"] = round(1000 * sum(delta[k] for k in servers) / done, 3)
    point["cpu_ms_per_request"] = cpu
    point["machine_busy_pct"] = round(100 * delta["machine"] / (wall * cores), 1)
    point["foreign_cpu_pct"] = round(100 * max(0.0, delta["machine"] - ours) / (wall * cores), 1)
    return point


def settle(meter: CpuMeter, min_s: float, max_s: float = 20.0, idle_share: float = 0.05) -> float:
    """After an overloaded point: wait until the servers stop working off their backlog (their
    CPU below ``idle_share`` of a core over half a second), at least ``min_s``, at most
    ``max_s``. The next point then starts from an idle server, not from the last one's queue."""
    started = time.monotonic()
    time.sleep(min_s)
    servers = [k for k in meter.pids if k not in ("generator", "redis")]
    while time.monotonic() - started < max_s:
        before = meter.snapshot()
        time.sleep(0.5)
        after = meter.snapshot()
        if sum(after[k] - before[k] for k in servers) < idle_share * 0.5:
            break
    return round(time.monotonic() - started, 2)


def sweep(
    worker: LoadWorker, meter: CpuMeter, base: LoadSpec, cfg: SweepConfig, cores: int
) -> dict[str, Any]:
    """Points in the order measured and, per bound, the best holding point and its rate."""
    points: list[dict[str, Any]] = []

    def run(rate: float) -> dict[str, Any]:
        duration = base.duration_s
        if cfg.min_requests:
            duration = min(max(duration, cfg.min_requests / rate), cfg.max_point_s)
        spec = replace(base, rate=round(rate, 1), duration_s=round(duration, 2))
        point = measure(worker, meter, spec, cores)
        point["holds_ms"] = {f"{b:g}": holds(point, cfg, b) for b in cfg.bounds_ms}
        point["holds"] = holds(point, cfg, min(cfg.bounds_ms))
        points.append(point)
        if not holds(point, cfg, cfg.loosest):
            point["settle_s"] = settle(meter, cfg.cooldown_s)
        return point

    rate, held_once = cfg.start_rps, False
    while len(points) < cfg.max_points + (cfg.extend if held_once else 0):
        if holds(run(rate), cfg, cfg.loosest):
            held_once = True
            rate *= cfg.factor
        elif held_once or rate / 2 < cfg.min_rps:
            break
        else:
            rate /= 2
    for bound in sorted(cfg.bounds_ms):
        for _ in range(cfg.probe_down):
            lowest = min(p["spec"]["rate"] for p in points)
            if any(holds(p, cfg, bound) for p in points) or lowest / 2 < cfg.min_rps:
                break
            run(lowest / 2)
        for _ in range(cfg.refine):
            best, failed = _edges(points, cfg, bound)
            if best is None or failed is None:
                break
            low, high = best["spec"]["rate"], failed["spec"]["rate"]
            if high - low <= max(2.0, 0.05 * low):
                break
            run((low + high) / 2)
    by_bound: dict[str, Any] = {}
    for bound in cfg.bounds_ms:
        best, failed = _edges(points, cfg, bound)
        by_bound[f"{bound:g}"] = {
            "max_rps": best["achieved_rps"] if best else 0.0,
            "max_offered_rps": best["spec"]["rate"] if best else 0.0,
            "best": _brief(best) if best else None,
            "first_failing": _brief(failed) if failed else None,
            "capped": best is not None and failed is None,
            "failed_on": _failed_on(failed, cfg, bound) if failed else [],
            "generator_cores": _generator_cores(failed) if failed else None,
        }
    primary = by_bound[f"{min(cfg.bounds_ms):g}"]
    return {
        "max_rps": primary["max_rps"],
        "capped": primary["capped"],
        "by_bound_ms": by_bound,
        "points": points,
        "config": {**cfg.__dict__, "bounds_ms": list(cfg.bounds_ms)},
    }


def _edges(
    points: list[dict[str, Any]], cfg: SweepConfig, bound: float
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The highest-rate point holding ``bound`` and the lowest failing one above it."""
    held = [p for p in points if holds(p, cfg, bound)]
    best = max(held, key=lambda p: p["spec"]["rate"]) if held else None
    floor = best["spec"]["rate"] if best else 0.0
    above = [p for p in points if not holds(p, cfg, bound) and p["spec"]["rate"] > floor]
    failed = min(above, key=lambda p: p["spec"]["rate"]) if above else None
    return best, failed


def _failed_on(point: dict[str, Any], cfg: SweepConfig, bound: float) -> list[str]:
    """Which of a point's conditions broke: ``p99``, ``errors``, ``achieved`` (rate)."""
    why = []
    if point["latency_ms"].get("p99", float("inf")) > bound:
        why.append("p99")
    if sum(point["errors"].values()) > cfg.max_error_ratio * max(1, point["sent"]):
        why.append("errors")
    if point["achieved_rps"] < cfg.min_achieved * point["spec"]["rate"]:
        why.append("achieved")
    return why


def _generator_cores(point: dict[str, Any]) -> float | None:
    """Cores the load generator used at a point (its CPU ms per request x achieved rps)."""
    ms = point.get("cpu_ms_per_request", {}).get("generator")
    return None if ms is None else round(ms * point["achieved_rps"] / 1000, 2)


def _brief(point: dict[str, Any]) -> dict[str, Any]:
    return {
        "offered_rps": point["spec"]["rate"],
        "achieved_rps": point["achieved_rps"],
        "latency_ms": point["latency_ms"],
        "errors": point["errors"],
        "cpu_ms_per_request": point["cpu_ms_per_request"],
        "foreign_cpu_pct": point["foreign_cpu_pct"],
    }
