"""``python -m benchmarks compare --out DIR [--quick|--smoke]``: every benchmark, one run.

Order (each step measured while nothing else of ours runs):

1. workspace: feature repo copy, fresh data, private redis-server, ``feast apply`` + materialize;
2. start Berth (predictor + transformer), the baseline (predictor + transformer) and a second
   Berth predictor with batching off, all on loopback, and one load-generator process; unless
   ``--smoke``, also the peers (:mod:`benchmarks.peer_run`: MLServer, Triton, the tuned peer
   chain, the floor, Berth with a REST V2 hop);
3. predictor alone in-process (ORT int8 vs fp32 vs torch eager), in a child process;
4. feature read for one request of N candidates (Berth / Feast SDK / raw Redis floor);
5. end to end: sweep Berth, Berth over its other hop (gRPC beside REST V2), the baseline, the
   tuned peer and the floor (REST V1, same requests) up to p99 <= bound;
6. Berth's other protocols (V2 REST, gRPC V2) and batching on vs off (single-row gRPC requests
   straight to the predictor); the predictor peers beside Berth's predictor, then the
   prediction-cache experiment (unless ``--smoke``);
7. optional py-spy profile of each server under load; stop everything; write
   ``results.json``, ``report.md`` and ``latency.png``.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import (
    cache_bench,
    features_bench,
    machine,
    peers,
    predictor_bench,
    profile,
    report,
    shadow_bench,
    stages,
)
from benchmarks.cpu import CpuMeter
from benchmarks.loadgen import LoadSpec, LoadWorker
from benchmarks.payloads import MODEL
from benchmarks.peer_run import HOP_CHAINS, HOP_KEYS, PeerRun, Ports, e2e_entry, same_rate
from benchmarks.stacks import PROJECT_ROOT, BaselineStack, BerthStack
from benchmarks.sweep import SweepConfig, measure, sweep
from benchmarks.workspace import Workspace
from berth.stack import LOOPBACK, ServerProcess, free_port, predictor_process

DEFAULT_ARTIFACT = PROJECT_ROOT / "artifacts" / "driver-ranking"
PORT_ATTRS = ("predictor_http", "predictor_grpc", "http", "grpc")  # a Stack's ports


@dataclass(frozen=True)
class Plan:
    """How long and how wide each part runs."""

    point_s: float
    warmup_s: float
    berth: SweepConfig
    baseline: SweepConfig
    kernel_seconds: float
    kernel_batches: tuple[int, ...]
    feature_reads: int
    protocol_sweeps: bool
    batching_rates: tuple[float, ...]  # fixed points; empty: sweep
    batching_sweep: SweepConfig = field(default_factory=SweepConfig)
    widths: tuple[tuple[int, ...], ...] = ()
    profile_s: float = 0.0
    stage_requests: int = 20
    shadow_rounds: int = 1  # alternating off/on points of the shadow-cost measurement
    shadow_point_s: float = 0.5  # short points, many rounds: disturbances hit both sides
    peers: SweepConfig | None = None  # predictor peers + tuned/floor/REST-hop chains; None: skip
    peer_point_s: float = 1.0


PLANS = {
    "full": Plan(
        point_s=6.0,
        warmup_s=1.0,
        berth=SweepConfig(start_rps=20, factor=1.4, refine=2, max_points=20, min_requests=600),
        baseline=SweepConfig(start_rps=10, factor=1.4, refine=2, max_points=20, min_requests=600),
        kernel_seconds=3.0,
        kernel_batches=(1, 10, 64, 256),
        feature_reads=2000,
        protocol_sweeps=True,
        batching_rates=(),
        batching_sweep=SweepConfig(start_rps=200, factor=1.5, refine=2, max_points=12),
        widths=((512, 256), (1024, 512)),
        profile_s=8.0,
        stage_requests=500,
        shadow_rounds=16,
        shadow_point_s=2.0,
        peers=SweepConfig(start_rps=100, factor=1.4, refine=2, max_points=14, min_requests=300),
        peer_point_s=3.0,
    ),
    "quick": Plan(
        point_s=2.0,
        warmup_s=0.5,
        berth=SweepConfig(  # 8 points reach ~1000 rps, 12 ~7000
            start_rps=40, factor=1.6, refine=1, max_points=12, min_requests=80, max_point_s=3
        ),
        baseline=SweepConfig(
            start_rps=10, factor=1.6, refine=1, max_points=9, min_requests=80, max_point_s=3
        ),
        kernel_seconds=0.5,
        kernel_batches=(1, 10, 64, 256),
        feature_reads=400,
        protocol_sweeps=False,
        batching_rates=(400.0, 1600.0),
        widths=((512, 256),),
        profile_s=3.0,
        stage_requests=150,
        shadow_rounds=8,
        shadow_point_s=1.0,
        peers=SweepConfig(start_rps=200, factor=2.0, refine=2, max_points=6, cooldown_s=0.5),
        peer_point_s=0.8,
    ),
    "smoke": Plan(
        point_s=1.0,
        warmup_s=0.3,
        berth=SweepConfig(
            start_rps=20, factor=2.0, refine=0, max_points=2, extend=0, cooldown_s=0.2
        ),
        baseline=SweepConfig(
            start_rps=10, factor=2.0, refine=0, max_points=2, extend=0, cooldown_s=0.2
        ),
        kernel_seconds=0.2,
        kernel_batches=(64,),
        feature_reads=50,
        protocol_sweeps=False,
        batching_rates=(200.0,),
    ),
}


@dataclass
class Options:
    out: Path
    mode: str = "full"
    artifact: Path = DEFAULT_ARTIFACT
    data: Path | None = None
    bound_ms: float = 10.0
    candidates: int = 10
    profile: bool = True
    nice: int = 0
    arrivals: str = "constant"
    quiet_wait_s: float = 0.0  # wait up to this long for other load on the machine to settle
    argv: list[str] = field(default_factory=list)


def run(opts: Options) -> dict[str, Any]:
    plan = PLANS[opts.mode]
    bounds = bounds_for(opts.bound_ms)
    cfg = {"berth": replace(plan.berth, bounds_ms=bounds)}
    cfg["baseline"] = replace(plan.baseline, bounds_ms=bounds)
    opts.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    results: dict[str, Any] = {
        "command": "python -m benchmarks " + shlex.join(opts.argv),
        "mode": opts.mode,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine.info(),
        "notes": [],
    }
    cores = results["machine"]["cores_logical"] or 1
    results["nice"] = _renice(opts.nice, results["notes"])
    if opts.quiet_wait_s > 0:
        results["quiet_wait"] = machine.wait_quiet(opts.quiet_wait_s)
        _say(f"machine busy before start: {results['quiet_wait']}")
    measured_from = time.perf_counter()
    work = opts.out / "work"
    ws = Workspace(work, opts.artifact.resolve(), opts.data)
    berth = BerthStack("berth", ws, opts.out / "logs")
    baseline = BaselineStack("baseline", ws, opts.out / "logs")
    nobatch: ServerProcess | None = None
    nobatch_ports = (free_port(), free_port())
    taken = {*nobatch_ports, *(getattr(s, a) for s in (berth, baseline) for a in PORT_ATTRS)}
    extra = PeerRun(ws, opts.out / "logs", berth, Ports(taken)) if plan.peers else None
    worker: LoadWorker | None = None
    steps: dict[str, float] = {}

    def step(name: str, since: float) -> float:
        now = time.perf_counter()
        steps[name] = round(now - since, 1)
        _say(f"{name}: {steps[name]}s")
        return now

    try:
        ws.start()
        t = step("workspace", measured_from)
        berth.start()
        baseline.start()
        if extra is not None:
            extra.start()
        nobatch = predictor_process(
            MODEL,
            ws.artifact,
            nobatch_ports,
            env={"BERTH_PREDICTOR_BATCHING": "false"},
            log_path=opts.out / "logs" / "predictor-batching-off.log",
        ).start()
        worker = LoadWorker()
        berth.wait_ready()
        baseline.wait_ready()
        nobatch.wait_ready(180)
        if extra is not None:
            extra.wait_ready()
        t = step("start_servers", t)

        kernels = predictor_bench.run(
            ws.artifact,
            ws.build_dir,
            list(plan.kernel_batches),
            plan.kernel_seconds,
            list(plan.widths),
        )
        t = step("predictor_kernels", t)
        features = features_bench.run(ws, opts.candidates, plan.feature_reads)
        t = step("feature_read", t)
        breakdowns = {
            stack.name: stages.breakdown(
                stack.url,
                {"transformer": stack.url, "predictor": stack.predictor_url},
                plan.stage_requests,
                opts.candidates,
            )
            for stack in (berth, baseline)
        }
        t = step("stages", t)

        ranges = ws.entity_ranges()
        base_spec = LoadSpec(
            protocol="v1",
            target=berth.url,
            rate=1.0,
            duration_s=plan.point_s,
            warmup_s=plan.warmup_s,
            arrivals=opts.arrivals,
            candidates=opts.candidates,
            drivers=ranges["drivers"],
            customers=ranges["customers"],
        )
        redis_pid = ws.redis._proc.pid if ws.redis._proc else None
        e2e: dict[str, Any] = {
            "protocol": "v1",
            "bound_ms": opts.bound_ms,
            "bounds_ms": list(bounds),
            "arrivals": opts.arrivals,
            "candidates": opts.candidates,
            "point_s": plan.point_s,
        }
        key = _rate_key(opts.bound_ms)
        chains: list[Any] = [berth, baseline]
        if extra is not None:  # the other hop right after Berth's own sweep
            mine, other = extra.hops()
            e2e["hop_as_started"] = HOP_KEYS[mine]
            chains[1:1] = [extra.chains[other]]
            chains += [extra.chains[n] for n in ("tuned_peer", "floor") if n in extra.chains]
        for stack in chains:
            meter = _meter(stack.pids(), redis_pid, worker.pid)
            spec = replace(base_spec, target=stack.url, label=stack.name)
            result = sweep(worker, meter, spec, cfg.get(stack.name, cfg["berth"]), cores)
            e2e[stack.name] = e2e_entry(result, key, cpu_bound(result["points"], cores))
            t = step(f"e2e_{stack.name}", t)
        e2e.update(_chain_ratios(e2e, key))
        if extra is not None:  # the hop both ways at one rate: CPU per request at equal load
            hops = {HOP_KEYS[mine]: berth, _other_key(mine): extra.chains[other]}
            held_any = max(e2e[n]["sweep"]["by_bound_ms"][f"{max(bounds):g}"]["max_rps"]
                           for n in ("berth", other))  # fmt: skip
            e2e["hop"]["same_rate"] = same_rate(
                worker,
                hops,
                {n: _meter(c.pids(), redis_pid, worker.pid) for n, c in hops.items()},
                replace(base_spec, rate=max(20.0, round(0.5 * held_any, 1))),
                max(2, plan.shadow_rounds // 2),
                cores,
            )
            t = step("hop_same_rate", t)
        by_bound = {}
        for b in bounds:
            k = _rate_key(b)
            if e2e["baseline"][k] > 0:
                by_bound[f"{b:g}"] = round(e2e["berth"][k] / e2e["baseline"][k], 2)
        e2e["berth_over_baseline_by_bound"] = by_bound
        e2e["berth_over_baseline"] = by_bound.get(f"{opts.bound_ms:g}")

        meter = _meter(berth.pids(), redis_pid, worker.pid)
        held = max(v["max_rps"] for v in e2e["berth"]["sweep"]["by_bound_ms"].values())
        e2e["berth_protocols"] = _protocols(
            worker, meter, base_spec, berth, plan, cfg["berth"], held, cores
        )
        t = step("protocols", t)
        batching = _batching(worker, berth, (nobatch, nobatch_ports[1]), plan, opts, cores)
        t = step("batching", t)
        if extra is not None and plan.peers is not None:
            peer_spec = replace(base_spec, duration_s=plan.peer_point_s, warmup_s=0.3)
            peer_cfg = replace(plan.peers, bounds_ms=bounds)
            results["predictor_peers"] = peers.measure(
                worker, extra.predictor_targets(), peer_spec, peer_cfg, cores
            )
            t = step("predictor_peers", t)
            predictor_cpu = e2e["berth"]["cpu_bound"].get("cpu_ms_per_request", {})
            results["prediction_cache"] = cache_bench.run(
                ws, opts.candidates, 20 * plan.stage_requests, predictor_cpu.get("predictor")
            )
            t = step("prediction_cache", t)
        # The shadow's cost at 40% of the highest rate Berth held: below saturation.
        shadow_rate = max(20.0, round(0.4 * held, 1))
        shadow = shadow_bench.run(
            worker,
            berth,
            opts.out / "logs",
            replace(base_spec, duration_s=plan.shadow_point_s, warmup_s=0.2),
            shadow_rate,
            plan.shadow_rounds,
        )
        t = step("shadow", t)

        if opts.profile and plan.profile_s > 0:
            results["profile"] = _profile(
                worker,
                [berth, baseline],
                e2e,
                key,
                base_spec,
                plan,
                opts.out / "profile",
            )
            t = step("profile", t)
    finally:
        if worker is not None:
            worker.close()
        for proc in (nobatch,):
            if proc is not None:
                proc.stop()
        if extra is not None:
            extra.stop()
            results["notes"] += extra.notes
        for stack in (berth, baseline):
            stack.stop()
        ws.close()

    results["e2e"] = e2e
    results["stages"] = breakdowns
    results["features"] = _features_summary(features)
    results["predictor"] = _predictor_summary(kernels, batching)
    results["shadow"] = shadow
    results["targets"] = _targets(results, key)
    results["steps_s"] = steps
    results["workspace_s"] = ws.timings
    results["machine"]["load_average_at_end"] = [round(v, 2) for v in os.getloadavg()]
    results["duration_s"] = round(time.perf_counter() - started, 1)
    results["notes"] += _notes(results, key)
    (opts.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    report.write(results, opts.out)
    return results


def _renice(nice: int, notes: list[str]) -> int:
    """Run this process and every child it starts at ``nice`` (children inherit it)."""
    if nice == 0:
        return os.nice(0)
    try:
        current = os.nice(nice - os.nice(0))
    except PermissionError:
        notes.append(f"--nice {nice} refused (needs root or CAP_SYS_NICE); ran at normal priority")
        return os.nice(0)
    notes.append(
        f"Every benchmark process (servers, Redis, generator) ran at niceness {current}, so "
        "other processes on the machine disturb the measurement less; both stacks alike."
    )
    return current


def _say(message: str) -> None:
    print(f"[benchmarks] {message}", file=sys.stderr, flush=True)


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


def _rate_key(bound_ms: float) -> str:
    return f"max_rps_p99_{bound_ms:g}ms".replace(".", "_")


def _meter(pids: dict[str, int], redis_pid: int | None, generator: int) -> CpuMeter:
    named = dict(pids)
    if redis_pid is not None:
        named["redis"] = redis_pid
    named["generator"] = generator
    return CpuMeter(named)


def _protocols(
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


def _batching(
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
        "on": (berth.predictor.proc.pid, f"{LOOPBACK}:{berth.predictor_grpc}"),
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


def _profile(
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


def _features_summary(detail: dict[str, Any]) -> dict[str, Any]:
    def p50(name: str) -> float | None:
        return detail[name]["p50_ms"] if name in detail else None

    out: dict[str, Any] = {
        "candidates": detail["candidates"],
        "berth_p50_ms": p50("berth"),
        "feast_sdk_p50_ms": p50("feast_sdk"),
        "redis_floor_p50_ms": p50("redis_floor"),
        "berth_feast_source_p50_ms": p50("berth_feast_source"),
    }
    out.update(detail["ratios_p50"])
    cluster = detail.get("cluster", {})
    for name in ("berth_cluster", "feast_sdk_cluster", "redis_cluster_floor"):
        out[f"{name}_p50_ms"] = cluster[name]["p50_ms"] if name in cluster else None
    out["berth_cluster_over_floor"] = cluster.get("berth_cluster_over_floor")
    out["detail"] = detail
    return out


def _predictor_summary(kernels: dict[str, Any], batching: dict[str, Any]) -> dict[str, Any]:
    b64 = kernels["rows_per_s"].get("64", {})
    out: dict[str, Any] = {
        "int8_rows_per_s_b64": b64.get("int8"),
        "fp32_rows_per_s_b64": b64.get("fp32"),
        "torch_eager_rows_per_s_b64": b64.get("torch_eager"),
    }
    if b64.get("int8") and b64.get("fp32"):
        out["int8_over_fp32_b64"] = round(b64["int8"] / b64["fp32"], 2)
    if b64.get("torch_eager") and b64.get("int8"):
        out["int8_over_torch_b64"] = round(b64["int8"] / b64["torch_eager"], 2)
    out["kernels"] = kernels
    out["batching"] = batching
    return out


def _targets(results: dict[str, Any], key: str) -> list[dict[str, Any]]:
    """The issue's targets, each with its value from this run (the peers' only when they ran:
    ``--smoke`` skips them)."""
    e2e, feats, pred = results["e2e"], results["features"], results["predictor"]
    peer_ratios = results.get("predictor_peers", {}).get("berth_over", {})
    rows = [
        ("e2e " + key + ": Berth / baseline", ">= 5.0", e2e.get("berth_over_baseline"), 5.0),
        ("e2e " + key + ": Berth / tuned peer", ">= 2.0", e2e.get("berth_over_tuned_peer"), 2.0),
        ("e2e Berth servers CPU ms per request (busiest clean point)", "<= 1.2",
         e2e["berth"].get("servers_cpu_ms_per_request"), -1.2),
        ("predictor " + key + ", 10 rows, REST V2: Berth / MLServer", ">= 2.0",
         peer_ratios.get("mlserver.rest_v2"), 2.0),
        ("predictor " + key + ", 10 rows, gRPC V2: Berth / MLServer", ">= 2.0",
         peer_ratios.get("mlserver.grpc_v2"), 2.0),
        ("feature read p50 (10 candidates): Berth / raw Redis floor", "<= 2.0",
         feats.get("berth_over_floor"), -2.0),
        ("predictor rows/s at batch 64: int8 / fp32", ">= 1.5", pred.get("int8_over_fp32_b64"),
         1.5),
        ("feature read p50 on Redis Cluster: Berth / redis-py cluster pipeline", "<= 2.0",
         feats.get("berth_cluster_over_floor"), -2.0),
    ]  # fmt: skip
    return [
        {
            "name": name,
            "target": wanted,
            "value": value,
            "met": value is not None and (value >= goal if goal > 0 else value <= -goal),
        }
        for name, wanted, value, goal in rows
        if value is not None
        or not ("peer" in name or "MLServer" in name)
        or "predictor_peers" in results
    ]


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a and b else None


def _chain_ratios(e2e: dict[str, Any], key: str) -> dict[str, Any]:
    """Berth over the tuned peer; Berth's share of the floor; the hop, gRPC vs REST V2."""
    berth = e2e["berth"][key]
    out: dict[str, Any] = {}
    bounds = [_rate_key(b) for b in e2e["bounds_ms"]]
    for name, label in (("tuned_peer", "berth_over_tuned_peer"), ("floor", "berth_share_of_floor")):
        if name in e2e:
            out[label] = _ratio(berth, e2e[name][key])
            out[f"{label}_by_bound"] = {  # looser bounds: readable on a busy machine too
                k: _ratio(e2e["berth"].get(k), e2e[name].get(k)) for k in bounds
            }
    other = next((n for n in HOP_CHAINS.values() if n in e2e), None)
    if other is not None:
        mine = e2e["hop_as_started"]
        names = {mine: "berth", ("grpc_v2" if mine == "rest_v2" else "rest_v2"): other}
        out["hop"] = {
            proto: {
                key: e2e[name][key],
                "servers_cpu_ms_per_request": e2e[name]["servers_cpu_ms_per_request"],
            }
            for proto, name in names.items()
        }
        out["hop"]["rest_over_grpc"] = _ratio(
            out["hop"]["rest_v2"][key], out["hop"]["grpc_v2"][key]
        )
    return out


def _other_key(protocol: str) -> str:
    return HOP_KEYS["grpc-v2" if protocol == "v2" else "v2"]


def _notes(results: dict[str, Any], key: str) -> list[str]:
    notes = [
        "Latency is measured from each request's intended send time (open loop), so queueing "
        "behind a slow server counts in full.",
        "The load generator is its own process on the same machine: it competes with the "
        "servers for the same cores (its CPU per request is reported as 'generator').",
        "Baseline: KServe defaults kept (per-request trace log on); its predictor runs ORT "
        "with 1 intra-op thread, as Berth's does (ORT's default of one thread per core only "
        "adds contention for single small requests on 2 cores).",
    ]
    points = [
        p
        for stack in ("berth", "baseline")
        if stack in results["e2e"]
        for p in results["e2e"][stack]["sweep"]["points"]
    ]
    foreign = max((p["foreign_cpu_pct"] for p in points), default=0.0)
    if foreign > 10:
        notes.append(
            f"Other processes on the machine used up to {foreign}% of its CPU during the "
            "end-to-end points (foreign_cpu_pct per point): figures are lower and noisier "
            "than on an idle machine."
        )
    return notes
