"""The measurements ``compare`` makes beside the end-to-end sweeps: Berth's other protocols,
batching on vs off, the py-spy profile; and the CPU bound of a sweep."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from benchmarks import profile
from benchmarks.compare_plans import Options, Plan
from benchmarks.cpu import CpuMeter
from benchmarks.loadgen import LoadSpec, LoadWorker
from benchmarks.stacks import BerthStack
from benchmarks.sweep import SweepConfig, measure, sweep
from berth.stack import LOOPBACK, ServerProcess


def cpu_bound(points: list[dict[str, Any]], cores: int) -> dict[str, Any]:
    """What the CPU cost per request implies: the rate at which a process would saturate.

    From the error-free point with the highest achieved rate (per-request costs fall as load
    amortizes fixed work): each server is one event loop (one core at most); all processes
    together (servers, Redis, generator) share ``cores``. Less noisy than a latency bound on a
    shared machine, and an upper bound: it ignores the queueing a p99 bound forbids.
    """
    clean = [p for p in points if not p["errors"] and p["achieved_rps"] > 0]
    if not clean:
        return {}
    point = max(clean, key=lambda p: p["achieved_rps"])
    cpu = point["cpu_ms_per_request"]
    limits = {
        role: round(1000 / cpu[role], 1) for role in ("transformer", "predictor") if cpu.get(role)
    }
    total = sum(cpu.get(k, 0.0) for k in ("servers", "redis", "generator"))
    if total:
        limits["machine"] = round(1000 * cores / total, 1)
    bottleneck = min(limits, key=lambda k: limits[k])
    return {
        "at_rps": point["achieved_rps"],
        "cpu_ms_per_request": cpu,
        "saturation_rps": limits,
        "max_rps": limits[bottleneck],
        "bottleneck": bottleneck,
    }


def bounds_for(bound_ms: float) -> tuple[float, ...]:
    """The p99 bound asked for, and 2.5x and 5x it: one sweep answers all three."""
    return (bound_ms, round(2.5 * bound_ms, 3), round(5 * bound_ms, 3))


def rate_key(bound_ms: float) -> str:
    return f"max_rps_p99_{bound_ms:g}ms".replace(".", "_")


def meter_for(pids: dict[str, int], redis_pid: int | None, generator: int) -> CpuMeter:
    named = dict(pids)
    if redis_pid is not None:
        named["redis"] = redis_pid
    named["generator"] = generator
    return CpuMeter(named)


def protocols(
    worker: LoadWorker,
    meter: CpuMeter,
    base: LoadSpec,
    berth: BerthStack,
    plan: Plan,
    cfg: SweepConfig,
    v1_max: float,
    cores: int,
) -> dict[str, Any]:
    """Berth over V1 REST, V2 REST and gRPC V2: sweeps (full), or one point each at 80% of the
    highest rate V1 held (any bound)."""
    targets = {"v1": berth.url, "v2": berth.url, "grpc-v2": berth.grpc_target}
    out: dict[str, Any] = {}
    if plan.protocol_sweeps:
        for protocol, target in targets.items():
            spec = replace(base, protocol=protocol, target=target, label=f"berth-{protocol}")
            result = sweep(worker, meter, spec, cfg, cores)
            out[protocol] = {"max_rps": result["max_rps"], "sweep": result}
        return out
    rate = max(10.0, round(0.8 * v1_max, 1)) if v1_max else cfg.start_rps
    out["offered_rps"] = rate
    for protocol, target in targets.items():
        spec = replace(base, protocol=protocol, target=target, rate=rate, label=f"berth-{protocol}")
        point = measure(worker, meter, spec, cores)
        out[protocol] = {"point": point}
    return out


def batching(
    worker: LoadWorker,
    berth: BerthStack,
    nobatch: tuple[ServerProcess, int],  # the predictor with batching off, its gRPC port
    plan: Plan,
    opts: Options,
    cores: int,
) -> dict[str, Any]:
    """Single-row gRPC V2 requests straight to a predictor with batching on, then off."""
    off, off_grpc = nobatch
    assert off.proc is not None and berth.predictor is not None
    assert berth.predictor.proc is not None
    predictors = {
        "on": (berth.predictor.proc.pid, f"{LOOPBACK}:{berth.predictor_ports.grpc}"),
        "off": (off.proc.pid, f"{LOOPBACK}:{off_grpc}"),
    }
    base = LoadSpec(
        protocol="grpc-v2",
        target="",
        rate=1.0,
        duration_s=plan.point_s,
        warmup_s=plan.warmup_s,
        candidates=1,
        payload="features",
    )
    out: dict[str, Any] = {"rows_per_request": 1, "protocol": "grpc-v2"}
    for mode, (pid, target) in predictors.items():
        meter = CpuMeter({"predictor": pid, "generator": worker.pid})
        spec = replace(base, target=target, label=f"batching-{mode}")
        if plan.batching_rates:
            points = [
                measure(worker, meter, replace(spec, rate=rate), cores)
                for rate in plan.batching_rates
            ]
            out[mode] = {"points": points}
        else:
            cfg = replace(plan.batching_sweep, bounds_ms=(opts.bound_ms,))
            result = sweep(worker, meter, spec, cfg, cores)
            out[mode] = {"max_rps": result["max_rps"], "sweep": result}
    return out


def profile_servers(
    worker: LoadWorker,
    stacks: list[Any],
    e2e: dict[str, Any],
    key: str,
    base: LoadSpec,
    plan: Plan,
    out_dir: Path,
) -> dict[str, Any]:
    """py-spy samples of every server at 80% of the highest rate its stack held (any bound)."""
    py_spy = profile.find_py_spy()
    if py_spy is None:
        return {"skipped": "py-spy not found (pip install py-spy, or set BENCH_PY_SPY)"}
    out: dict[str, Any] = {}
    for stack in stacks:
        held = [v["max_rps"] for v in e2e[stack.name]["sweep"]["by_bound_ms"].values()]
        rate = max(20.0, round(0.8 * max(held, default=0.0), 1))
        recordings = [
            profile.start_recording(py_spy, f"{stack.name}-{role}", pid, plan.profile_s, out_dir)
            for role, pid in stack.pids().items()
        ]
        time.sleep(0.3)
        spec = replace(
            base,
            target=stack.url,
            rate=rate,
            duration_s=max(1.0, plan.profile_s - 1.0),
            label=f"profile-{stack.name}",
        )
        point = worker.run(spec)
        entry: dict[str, Any] = {"offered_rps": rate, "latency_ms": point["latency_ms"]}
        for rec in recordings:
            path = rec.wait(plan.profile_s + 15)
            entry[rec.name] = profile.summarize(path) if path else {"samples": 0}
        out[stack.name] = entry
    return out
