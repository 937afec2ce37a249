"""A capacity plan from measured costs: pods, CPU and Redis shards for a target load.

``python -m benchmarks capacity --rps N --p99-ms B [--results results.json]`` turns what
``benchmarks compare`` measures into replicas, CPU requests/limits and Redis shards, printed
as a table and written as a values file for ``helm install -f`` (the chart's own keys).

The arithmetic (each input is a measured figure; :class:`Costs` names where each comes from):

* **Pods.** Each server is one event loop, so one pod uses at most one core for requests. A
  pod is planned at the CPU utilisation at which the measured stack still held p99 <= B
  (``rate held at the bound x CPU ms per request``), capped at ``1 - headroom``:
  ``rps per pod = utilisation x 1000 / CPU ms per request``, ``replicas = ceil(N / that)``.
* **CPU.** ``request = CPU the pod uses at its planned rate x (1 + headroom)`` (what the
  scheduler must reserve), ``limit = 2 x request, at least one core`` (bursts, GC, gRPC's
  poller and ONNX Runtime's thread run beside the loop; the chart's 1:2 shape).
* **Redis.** Berth sends one HMGET per distinct entity (``candidates + 1``); a shard is one
  single-threaded redis-server: ``shards = ceil(N x HMGETs per request / (HMGET/s per shard x
  (1 - headroom)))``. More than one shard means Redis Cluster, at least 3 masters, one
  replica each.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

# `benchmarks compare --quick`, 2026-11-24 16:07 UTC, 2 cores (benchmarks/README.md, "Latest
# results"): used when no --results is given.
README_RUN = "benchmarks/README.md latest run (2026-11-24, 2-core EPYC)"
DEFAULT_HELD_RPS = {10.0: 545.0, 25.0: 671.0, 50.0: 671.0}
DEFAULT_SINGLE_REQUEST_MS = 2.55


@dataclass
class Costs:
    """The measured figures a plan rests on, and where each one came from."""

    transformer_cpu_ms: float = 1.12  # CPU ms per request, transformer process
    predictor_cpu_ms: float = 0.60  # CPU ms per request, predictor process
    held_rps: dict[float, float] = field(default_factory=lambda: dict(DEFAULT_HELD_RPS))
    single_request_ms: float = DEFAULT_SINGLE_REQUEST_MS  # unloaded client p50
    hmget_per_request: int = 11  # 10 candidates + 1 customer (Berth: one per entity)
    hmget_per_s_per_shard: float | None = None  # None: measure it (redis-benchmark)
    sources: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ServerPlan:
    replicas: int
    rps_per_pod: float
    utilisation: float
    cpu_request_m: int
    cpu_limit_m: int


@dataclass(frozen=True)
class Plan:
    rps: float
    p99_ms: float
    headroom: float
    bound_used_ms: float
    transformer: ServerPlan
    predictor: ServerPlan
    hmget_per_s: float
    shards: int
    redis_type: str
    warnings: tuple[str, ...]


def utilisation_for(costs: Costs, p99_ms: float, headroom: float) -> tuple[float, float, str]:
    """(planned CPU utilisation of one pod, the measured bound it rests on, a warning)."""
    bounds = sorted(b for b in costs.held_rps if costs.held_rps[b] > 0)
    warning = ""
    usable = [b for b in bounds if b <= p99_ms]
    if usable:
        bound = usable[-1]
        scale = 1.0
    else:
        bound = bounds[0]
        scale = max(0.0, (p99_ms - costs.single_request_ms) / (bound - costs.single_request_ms))
        warning = (
            f"p99 {p99_ms:g} ms is below every measured bound; the {bound:g} ms utilisation is "
            f"scaled by {scale:.2f} (an extrapolation: measure with --bound-ms {p99_ms:g})"
        )
    measured = costs.held_rps[bound] * costs.transformer_cpu_ms / 1000 * scale
    return min(measured, 1.0 - headroom), bound, warning


def server_plan(rps: float, cpu_ms: float, utilisation: float, headroom: float) -> ServerPlan:
    per_pod = utilisation * 1000 / cpu_ms
    replicas = max(1, math.ceil(rps / per_pod))
    used_m = rps / replicas * cpu_ms  # millicores at the planned rate (ms CPU per s)
    request = _round_up(used_m * (1 + headroom), 50)
    return ServerPlan(
        replicas=replicas,
        rps_per_pod=round(per_pod, 1),
        utilisation=round(utilisation, 3),
        cpu_request_m=request,
        cpu_limit_m=max(1000, 2 * request),
    )


def plan(rps: float, p99_ms: float, costs: Costs, headroom: float = 0.3) -> Plan:
    if p99_ms <= costs.single_request_ms:
        raise ValueError(
            f"p99 {p99_ms:g} ms is below one unloaded request ({costs.single_request_ms} ms)"
        )
    if costs.hmget_per_s_per_shard is None:
        raise ValueError("Redis HMGET/s per shard is not known (measure it first)")
    utilisation, bound, warning = utilisation_for(costs, p99_ms, headroom)
    if utilisation <= 0:
        raise ValueError(f"no utilisation holds p99 {p99_ms:g} ms on the measured figures")
    hmget = rps * costs.hmget_per_request
    shards = math.ceil(hmget / (costs.hmget_per_s_per_shard * (1 - headroom)))
    if shards > 1:
        shards = max(3, shards)
    return Plan(
        rps=rps,
        p99_ms=p99_ms,
        headroom=headroom,
        bound_used_ms=bound,
        transformer=server_plan(rps, costs.transformer_cpu_ms, utilisation, headroom),
        predictor=server_plan(rps, costs.predictor_cpu_ms, utilisation, headroom),
        hmget_per_s=hmget,
        shards=shards,
        redis_type="redis_cluster" if shards > 1 else "redis",
        warnings=tuple(w for w in (warning,) if w),
    )


def _round_up(value: float, step: int) -> int:
    return int(max(step, math.ceil(value / step) * step))


def costs_from_results(results: dict[str, Any]) -> Costs:
    """The figures of a ``benchmarks compare`` run (``results.json``)."""
    berth = results["e2e"]["berth"]
    cpu = berth["cpu_bound"]["cpu_ms_per_request"]
    held = {float(b): v["max_rps"] for b, v in berth["sweep"]["by_bound_ms"].items()}
    when = results.get("started_at") or results.get("command", "results.json")
    costs = Costs(
        transformer_cpu_ms=cpu["transformer"],
        predictor_cpu_ms=cpu["predictor"],
        held_rps=held,
        hmget_per_request=int(results["features"]["candidates"]) + 1,
        sources={"run": str(when)},
    )
    sequential = berth.get("sequential_p50_ms")
    if sequential:
        costs.single_request_ms = float(sequential)
    redis_ms = cpu.get("redis")
    if redis_ms:  # one single-threaded redis-server: its CPU per request bounds its rate
        costs.hmget_per_s_per_shard = round(1000 / redis_ms * costs.hmget_per_request)
        costs.sources["hmget_per_s_per_shard"] = (
            f"1000 / redis CPU ms per request ({redis_ms}) x {costs.hmget_per_request} HMGETs"
        )
    costs.sources.update(
        transformer_cpu_ms="e2e.berth.cpu_bound.cpu_ms_per_request.transformer",
        predictor_cpu_ms="e2e.berth.cpu_bound.cpu_ms_per_request.predictor",
        held_rps="e2e.berth.sweep.by_bound_ms.*.max_rps",
    )
    return costs


def default_costs() -> Costs:
    costs = Costs()
    costs.sources = {
        "transformer_cpu_ms": f"{README_RUN}: CPU ms per request, transformer",
        "predictor_cpu_ms": f"{README_RUN}: CPU ms per request, predictor",
        "held_rps": f"{README_RUN}: e2e.berth.max_rps_p99_10ms / _25ms / _50ms",
        "single_request_ms": f"{README_RUN}: one sequential request, client p50",
    }
    return costs


def load_costs(results: Path | None) -> Costs:
    if results is None:
        return default_costs()
    return costs_from_results(json.loads(Path(results).read_text()))


def values(p: Plan) -> dict[str, Any]:
    """The chart's values (helm/berth/values.yaml keys) for the plan."""

    def server(s: ServerPlan) -> dict[str, Any]:
        return {
            "minReplicas": s.replicas,
            "maxReplicas": max(s.replicas + 1, math.ceil(1.5 * s.replicas)),
            "resources": {
                "requests": {"cpu": f"{s.cpu_request_m}m"},
                "limits": {"cpu": f"{s.cpu_limit_m}m"},
            },
        }

    return {
        "transformer": server(p.transformer),
        "predictor": server(p.predictor),
        "featureStore": {"redis": {"type": p.redis_type}},
    }


def values_yaml(p: Plan) -> str:
    import yaml

    head = (
        f"# berth capacity plan: {p.rps:g} rps at p99 <= {p.p99_ms:g} ms, headroom "
        f"{p.headroom:.0%}.\n# Redis: {p.shards} shard(s) ({p.redis_type}), "
        f"{p.hmget_per_s:,.0f} HMGET/s; provision it outside the chart.\n"
    )
    return head + yaml.safe_dump(values(p), sort_keys=False)


def table(p: Plan, costs: Costs) -> str:
    rows = [
        ("transformer replicas", p.transformer.replicas, f"{p.transformer.rps_per_pod:g} rps/pod"),
        ("transformer CPU request / limit", f"{p.transformer.cpu_request_m}m / "
         f"{p.transformer.cpu_limit_m}m", f"{costs.transformer_cpu_ms} ms CPU per request"),
        ("predictor replicas", p.predictor.replicas, f"{p.predictor.rps_per_pod:g} rps/pod"),
        ("predictor CPU request / limit", f"{p.predictor.cpu_request_m}m / "
         f"{p.predictor.cpu_limit_m}m", f"{costs.predictor_cpu_ms} ms CPU per request"),
        ("pod utilisation planned", f"{p.transformer.utilisation:.0%}",
         f"held p99 <= {p.bound_used_ms:g} ms at {costs.held_rps[p.bound_used_ms]:g} rps; "
         f"cap 1 - headroom"),
        ("Redis HMGET/s", f"{p.hmget_per_s:,.0f}", f"{costs.hmget_per_request} per request"),
        ("Redis shards", f"{p.shards} ({p.redis_type})",
         f"{costs.hmget_per_s_per_shard:,.0f} HMGET/s per shard x (1 - headroom)"),
    ]  # fmt: skip
    lines = ["| what | plan | from |", "|---|---|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    lines += [f"\nwarning: {w}" for w in p.warnings]
    lines += ["", "measured figures:", *(f"  {k}: {v}" for k, v in costs.sources.items())]
    return "\n".join(lines)


def report(p: Plan, costs: Costs) -> dict[str, Any]:
    return {"plan": asdict(p), "costs": asdict(costs), "values": values(p)}


def measure_hmget_per_s(requests: int = 200_000, pipeline: int = 11) -> float:
    """HMGET/s one private redis-server answers here: ``redis-benchmark`` (50 clients, each
    pipelining ``pipeline`` HMGETs of 8 fields from one 8-field hash, Berth's read shape)."""
    import csv
    import io
    import subprocess

    import redis

    from berth.stack import LOOPBACK, RedisServer

    server = RedisServer().start()
    try:
        fields = [f"f{i}".encode() for i in range(8)]
        redis.Redis(host=LOOPBACK, port=server.port).hset(
            "bench:entity", mapping={f: b"\x35\x00\x00\x80\x3f" for f in fields}
        )
        out = subprocess.run(
            ["redis-benchmark", "-h", LOOPBACK, "-p", str(server.port), "-c", "50"]
            + ["-n", str(requests), "-P", str(pipeline), "--csv", "HMGET", "bench:entity"]
            + [f.decode() for f in fields],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        ).stdout
    finally:
        server.close()
    rows = [r for r in csv.reader(io.StringIO(out)) if len(r) > 1 and r[0] != "test"]
    return float(rows[-1][1])
