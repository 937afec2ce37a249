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
import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from benchmarks import (
    cache_bench,
    compare_summary,
    features_read,
    machine,
    peers,
    predictor_bench,
    report,
    shadow_bench,
    stages,
)
from benchmarks.compare_measures import (
    batching,
    bounds_for,
    cpu_bound,
    meter_for,
    profile_servers,
    protocols,
    rate_key,
)
from benchmarks.compare_plans import PLANS, Options, Plan
from benchmarks.compare_setup import Servers, Steps, renice, say
from benchmarks.cpu import CpuMeter
from benchmarks.loadgen import LoadSpec
from benchmarks.peer_run import HOP_KEYS, PeerRun, e2e_entry, same_rate
from benchmarks.sweep import SweepConfig, sweep


def run(opts: Options) -> dict[str, Any]:
    plan = PLANS[opts.mode]
    opts.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    results: dict[str, Any] = {
        "command": "python -m benchmarks " + shlex.join(opts.argv),
        "mode": opts.mode,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine.info(),
        "notes": [],
    }
    results["nice"] = renice(opts.nice, results["notes"])
    if opts.quiet_wait_s > 0:
        results["quiet_wait"] = machine.wait_quiet(opts.quiet_wait_s)
        say(f"machine busy before start: {results['quiet_wait']}")
    steps = Steps(time.perf_counter())
    servers = Servers(opts, plan)
    try:
        servers.start(steps)
        measured = _Run(opts, plan, servers, steps, results).measure()
    finally:
        servers.stop(results["notes"])
    key = rate_key(opts.bound_ms)
    results.update(measured)
    results["targets"] = compare_summary.targets(results, key)
    results["steps_s"] = steps.times
    results["workspace_s"] = servers.ws.timings
    results["machine"]["load_average_at_end"] = [round(v, 2) for v in os.getloadavg()]
    results["duration_s"] = round(time.perf_counter() - started, 1)
    results["notes"] += compare_summary.notes(results, key)
    (opts.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    report.write(results, opts.out)
    return results


class _Run:
    """The measurements, in order, over started servers (``results`` takes the optional parts:
    predictor peers, prediction cache, profile)."""

    def __init__(
        self, opts: Options, plan: Plan, servers: Servers, steps: Steps, results: dict[str, Any]
    ) -> None:
        assert servers.worker is not None
        self.opts, self.plan, self.servers, self.steps = opts, plan, servers, steps
        self.results = results
        self.worker = servers.worker
        self.cores = results["machine"]["cores_logical"] or 1
        self.bounds = bounds_for(opts.bound_ms)
        self.cfg = {
            "berth": replace(plan.berth, bounds_ms=self.bounds),
            "baseline": replace(plan.baseline, bounds_ms=self.bounds),
        }
        self.key = rate_key(opts.bound_ms)
        redis = servers.ws.redis
        self.redis_pid = redis._proc.pid if redis._proc else None

    def meter(self, pids: dict[str, int]) -> CpuMeter:
        return meter_for(pids, self.redis_pid, self.worker.pid)

    def measure(self) -> dict[str, Any]:
        opts, plan, s = self.opts, self.plan, self.servers
        kernels = predictor_bench.run(
            s.ws.artifact,
            s.ws.build_dir,
            list(plan.kernel_batches),
            plan.kernel_seconds,
            list(plan.widths),
        )
        self.steps.mark("predictor_kernels")
        features = features_read.run(s.ws, opts.candidates, plan.feature_reads)
        self.steps.mark("feature_read")
        breakdowns = {
            stack.name: stages.breakdown(
                stack.url,
                {"transformer": stack.url, "predictor": stack.predictor_url},
                plan.stage_requests,
                opts.candidates,
            )
            for stack in (s.berth, s.baseline)
        }
        self.steps.mark("stages")
        e2e, on_off, shadow = self._load_parts()
        return {
            "e2e": e2e,
            "stages": breakdowns,
            "features": compare_summary.features_summary(features),
            "predictor": compare_summary.predictor_summary(kernels, on_off),
            "shadow": shadow,
        }

    def _load_parts(self) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        """End to end, Berth's protocols, batching, the peers, the shadow, the profile."""
        opts, plan, s = self.opts, self.plan, self.servers
        ranges = s.ws.entity_ranges()
        base_spec = LoadSpec(
            protocol="v1",
            target=s.berth.url,
            rate=1.0,
            duration_s=plan.point_s,
            warmup_s=plan.warmup_s,
            arrivals=opts.arrivals,
            candidates=opts.candidates,
            drivers=ranges["drivers"],
            customers=ranges["customers"],
        )
        e2e = self._e2e(base_spec)
        held = max(v["max_rps"] for v in e2e["berth"]["sweep"]["by_bound_ms"].values())
        e2e["berth_protocols"] = protocols(
            self.worker,
            self.meter(s.berth.pids()),
            base_spec,
            s.berth,
            plan,
            self.cfg["berth"],
            held,
            self.cores,
        )
        self.steps.mark("protocols")
        assert s.nobatch is not None
        nobatch = (s.nobatch, s.nobatch_ports[1])
        on_off = batching(self.worker, s.berth, nobatch, plan, opts, self.cores)
        self.steps.mark("batching")
        if s.extra is not None and plan.peers is not None:
            self._peers(s.extra, plan.peers, base_spec, e2e)
        # The shadow's cost at 40% of the highest rate Berth held: below saturation.
        shadow = shadow_bench.run(
            self.worker,
            s.berth,
            s.logs,
            replace(base_spec, duration_s=plan.shadow_point_s, warmup_s=0.2),
            max(20.0, round(0.4 * held, 1)),
            plan.shadow_rounds,
        )
        self.steps.mark("shadow")
        if opts.profile and plan.profile_s > 0:
            self.results["profile"] = profile_servers(
                self.worker,
                [s.berth, s.baseline],
                e2e,
                self.key,
                base_spec,
                plan,
                opts.out / "profile",
            )
            self.steps.mark("profile")
        return e2e, on_off, shadow

    def _e2e(self, base_spec: LoadSpec) -> dict[str, Any]:
        """Sweep every chain (Berth, its other hop, the baseline, the tuned peer, the floor)."""
        opts, s, key = self.opts, self.servers, self.key
        e2e: dict[str, Any] = {
            "protocol": "v1",
            "bound_ms": opts.bound_ms,
            "bounds_ms": list(self.bounds),
            "arrivals": opts.arrivals,
            "candidates": opts.candidates,
            "point_s": self.plan.point_s,
        }
        chains: list[Any] = [s.berth, s.baseline]
        if s.extra is not None:  # the other hop right after Berth's own sweep
            mine, other = s.extra.hops()
            e2e["hop_as_started"] = HOP_KEYS[mine]
            chains[1:1] = [s.extra.chains[other]]
            chains += [s.extra.chains[n] for n in ("tuned_peer", "floor") if n in s.extra.chains]
        for stack in chains:
            spec = replace(base_spec, target=stack.url, label=stack.name)
            cfg = self.cfg.get(stack.name, self.cfg["berth"])
            result = sweep(self.worker, self.meter(stack.pids()), spec, cfg, self.cores)
            e2e[stack.name] = e2e_entry(result, key, cpu_bound(result["points"], self.cores))
            self.steps.mark(f"e2e_{stack.name}")
        e2e.update(compare_summary.chain_ratios(e2e, key))
        if s.extra is not None:
            self._hop_same_rate(s.extra, e2e, base_spec, mine, other)
        by_bound = {}
        for b in self.bounds:
            k = rate_key(b)
            if e2e["baseline"][k] > 0:
                by_bound[f"{b:g}"] = round(e2e["berth"][k] / e2e["baseline"][k], 2)
        e2e["berth_over_baseline_by_bound"] = by_bound
        e2e["berth_over_baseline"] = by_bound.get(f"{opts.bound_ms:g}")
        return e2e

    def _hop_same_rate(
        self, extra: PeerRun, e2e: dict[str, Any], base_spec: LoadSpec, mine: str, other: str
    ) -> None:
        """The hop both ways at one rate: CPU per request at equal load."""
        berth = self.servers.berth
        hops: dict[str, Any] = {
            HOP_KEYS[mine]: berth,
            compare_summary.other_key(mine): extra.chains[other],
        }
        held_any = max(e2e[n]["sweep"]["by_bound_ms"][f"{max(self.bounds):g}"]["max_rps"]
                       for n in ("berth", other))  # fmt: skip
        e2e["hop"]["same_rate"] = same_rate(
            self.worker,
            hops,
            {n: self.meter(c.pids()) for n, c in hops.items()},
            replace(base_spec, rate=max(20.0, round(0.5 * held_any, 1))),
            max(2, self.plan.shadow_rounds // 2),
            self.cores,
        )
        self.steps.mark("hop_same_rate")

    def _peers(
        self, extra: PeerRun, peer_sweep: SweepConfig, base_spec: LoadSpec, e2e: dict[str, Any]
    ) -> None:
        """The predictor peers beside Berth's predictor, then the prediction-cache experiment."""
        plan, s = self.plan, self.servers
        peer_spec = replace(base_spec, duration_s=plan.peer_point_s, warmup_s=0.3)
        peer_cfg = replace(peer_sweep, bounds_ms=self.bounds)
        self.results["predictor_peers"] = peers.measure(
            self.worker, extra.predictor_targets(), peer_spec, peer_cfg, self.cores
        )
        self.steps.mark("predictor_peers")
        predictor_cpu = e2e["berth"]["cpu_bound"].get("cpu_ms_per_request", {})
        self.results["prediction_cache"] = cache_bench.run(
            s.ws, self.opts.candidates, 20 * plan.stage_requests, predictor_cpu.get("predictor")
        )
        self.steps.mark("prediction_cache")
