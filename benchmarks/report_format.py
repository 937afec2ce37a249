"""Formatting shared by the report's parts: cells, tables, rate keys, the end-to-end rows."""

from __future__ import annotations

from typing import Any


def fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.{digits}f}"
    return str(value)


def table(header: list[str], rows: list[list[Any]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return out


STACKS = ("berth", "baseline")
CHAINS = ("berth_grpc_hop", "berth_rest_hop", "tuned_peer", "floor")  # beside them, with peers
CHAIN_WHAT = {
    "berth_grpc_hop": "Berth, transformer->predictor over gRPC V2 instead of REST V2",
    "berth_rest_hop": "Berth, transformer->predictor over REST V2 instead of gRPC",
    "tuned_peer": "KServe transformer + Feast async SDK -> MLServer (pooled REST V2)",
    "floor": "bare ASGI + one pipelined Redis read + one ORT run",
}


def rate_key(bound_ms: float) -> str:
    return f"max_rps_p99_{bound_ms:g}ms".replace(".", "_")


def e2e_rows(sweep: dict[str, Any], name: str) -> list[list[Any]]:
    rows = []
    for p in sweep["points"]:
        lat, cpu = p["latency_ms"], p["cpu_ms_per_request"]
        rows.append(
            [
                name,
                p["spec"]["protocol"],
                p["spec"]["rate"],
                p["achieved_rps"],
                lat.get("p50"),
                lat.get("p90"),
                lat.get("p99"),
                lat.get("p99.9"),
                lat.get("max"),
                ", ".join(f"{k}: {v}" for k, v in p["errors"].items()) or "0",
                cpu.get("servers"),
                cpu.get("transformer"),
                cpu.get("predictor"),
                cpu.get("redis"),
                cpu.get("generator"),
                p["foreign_cpu_pct"],
                " ".join(f"{b}:{'y' if ok else 'n'}" for b, ok in p.get("holds_ms", {}).items())
                or ("yes" if p.get("holds") else "no"),
            ]
        )
    return rows


E2E_HEADER = [
    "stack",
    "proto",
    "offered rps",
    "achieved rps",
    "p50 ms",
    "p90 ms",
    "p99 ms",
    "p99.9 ms",
    "max ms",
    "errors",
    "CPU ms/req servers",
    "transformer",
    "predictor",
    "redis",
    "generator",
    "foreign CPU %",
    "holds p99 bound (ms)",
]
