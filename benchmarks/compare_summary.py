"""What ``compare`` writes from its measurements: summaries, the issue's targets, ratios, notes."""

from __future__ import annotations

import math
from typing import Any

from benchmarks.compare_measures import rate_key
from benchmarks.peer_run import HOP_CHAINS, HOP_KEYS


def features_summary(detail: dict[str, Any]) -> dict[str, Any]:
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


def predictor_summary(kernels: dict[str, Any], batching: dict[str, Any]) -> dict[str, Any]:
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


def targets(results: dict[str, Any], key: str) -> list[dict[str, Any]]:
    """The issue's targets, each with its value from this run (the peers' only when they ran:
    ``--smoke`` skips them)."""
    e2e, feats, pred = results["e2e"], results["features"], results["predictor"]
    peer_ratios = results.get("predictor_peers", {}).get("berth_over", {})
    rows = [
        ("e2e " + key + ": Berth / baseline", ">= 5.0", _over(e2e, "baseline", key), 5.0),
        ("e2e " + key + ": Berth / tuned peer", ">= 2.0", _over(e2e, "tuned_peer", key), 2.0),
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
            "value": None if value == math.inf else value,  # JSON has no infinity
            "met": value is not None and (value >= goal if goal > 0 else value <= -goal),
            **({"note": NONE_HELD} if value == math.inf else {}),
        }
        for name, wanted, value, goal in rows
        if value is not None
        or not ("peer" in name or "MLServer" in name)
        or "predictor_peers" in results
    ]


NONE_HELD = "the other stack held no rate at this bound, down to its lowest probe; Berth did"


def _over(e2e: dict[str, Any], name: str, key: str) -> float | None:
    """Berth's rate over ``name``'s: infinite when ``name`` measured none (its sweep probed
    down and no rate held) while Berth held one; None when either did not run."""
    berth, other = e2e["berth"].get(key), e2e.get(name, {}).get(key)
    if berth and other == 0:
        return math.inf
    return _ratio(berth, other)


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a and b else None


def chain_ratios(e2e: dict[str, Any], key: str) -> dict[str, Any]:
    """Berth over the tuned peer; Berth's share of the floor; the hop, gRPC vs REST V2."""
    berth = e2e["berth"][key]
    out: dict[str, Any] = {}
    bounds = [rate_key(b) for b in e2e["bounds_ms"]]
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


def other_key(protocol: str) -> str:
    return HOP_KEYS["grpc-v2" if protocol == "v2" else "v2"]


def notes(results: dict[str, Any], key: str) -> list[str]:
    out = [
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
        out.append(
            f"Other processes on the machine used up to {foreign}% of its CPU during the "
            "end-to-end points (foreign_cpu_pct per point): figures are lower and noisier "
            "than on an idle machine."
        )
    return out
