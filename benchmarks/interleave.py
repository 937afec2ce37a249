"""Two or more running stacks measured side by side: the same fixed-rate point sent to each in
turn, round after round (``python -m benchmarks interleave``).

For an A/B of two builds on a shared or drifting machine: a sequential A-then-B run puts the
host's drift (other tenants, cache, frequency) into the difference, while alternating short
points, in ABBA order, spreads it over both. Each point reports the CPU seconds per request of
each stack's server process trees (``--pid``), and its latency; the summary is the median of
the rounds, per stack.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, replace
from typing import Any

from benchmarks.cpu import tree_cpu_seconds
from benchmarks.loadgen import LoadSpec, LoadWorker


@dataclass(frozen=True)
class Stack:
    """A running stack: where to send, and the server processes whose CPU counts."""

    name: str
    target: str
    pids: tuple[int, ...]


def pairs(values: list[str], what: str) -> list[tuple[str, str]]:
    """``NAME=VALUE`` options, in order; a ``ValueError`` naming the bad one."""
    out = []
    for value in values:
        name, sep, rest = value.partition("=")
        if not sep or not name or not rest:
            raise ValueError(f"{what} must be NAME=VALUE, got {value!r}")
        out.append((name, rest))
    return out


def stacks(targets: list[str], pids: list[str]) -> list[Stack]:
    """``--stack NAME=TARGET`` (two or more) and ``--pid NAME=PID`` as :class:`Stack` s."""
    named = pairs(targets, "--stack")
    names = [name for name, _ in named]
    if len(named) < 2 or len(set(names)) != len(names):
        raise ValueError("give two or more --stack NAME=TARGET, each NAME once")
    by_name: dict[str, list[int]] = {name: [] for name in names}
    for name, pid in pairs(pids, "--pid"):
        if name not in by_name:
            raise ValueError(f"--pid {name}={pid}: no --stack named {name!r}")
        if not pid.isdigit():
            raise ValueError(f"--pid {name}={pid}: not a process id")
        by_name[name].append(int(pid))
    return [Stack(name, target, tuple(by_name[name])) for name, target in named]


def order(names: list[str], rounds: int) -> list[str]:
    """The visiting order: forward on even rounds, backward on odd ones (ABBA...)."""
    return [n for r in range(rounds) for n in (names if r % 2 == 0 else names[::-1])]


def point(worker: LoadWorker, stack: Stack, spec: LoadSpec) -> dict[str, Any]:
    """One point on ``stack``: its CPU ms per request and latency."""
    before = sum(tree_cpu_seconds(pid) for pid in stack.pids)
    result = worker.run(replace(spec, target=stack.target))
    cpu_s = sum(tree_cpu_seconds(pid) for pid in stack.pids) - before
    requests = max(int(result["completed_total"]), 1)
    return {
        "stack": stack.name,
        "cpu_ms_per_request": round(cpu_s * 1000 / requests, 4) if stack.pids else None,
        "p50_ms": result["latency_ms"].get("p50"),
        "p99_ms": result["latency_ms"].get("p99"),
        "ok": result["ok"],
        "errors": result["errors"],
    }


def summarize(points: list[dict[str, Any]], names: list[str]) -> dict[str, dict[str, Any]]:
    """Per stack, the median of its points (None where a figure is missing)."""

    def median(values: list[Any]) -> float | None:
        present = [v for v in values if v is not None]
        return round(statistics.median(present), 4) if present else None

    summary = {}
    for name in names:
        mine = [p for p in points if p["stack"] == name]
        summary[name] = {
            "points": len(mine),
            "cpu_ms_per_request": median([p["cpu_ms_per_request"] for p in mine]),
            "p50_ms": median([p["p50_ms"] for p in mine]),
            "p99_ms": median([p["p99_ms"] for p in mine]),
            "errors": sum(sum(p["errors"].values()) for p in mine),
        }
    first = summary[names[0]]["cpu_ms_per_request"]
    for name in names:
        cpu = summary[name]["cpu_ms_per_request"]
        summary[name]["cpu_over_first"] = round(cpu / first, 3) if cpu and first else None
    return summary


def run(stacks_: list[Stack], spec: LoadSpec, rounds: int) -> dict[str, Any]:
    """``rounds`` rounds of one ``spec`` point per stack (after one warm-up point each)."""
    by_name = {s.name: s for s in stacks_}
    names = list(by_name)
    worker = LoadWorker()
    try:
        for stack in stacks_:
            worker.run(replace(spec, target=stack.target, duration_s=1.0))  # warm-up
        points = [point(worker, by_name[name], spec) for name in order(names, rounds)]
    finally:
        worker.close()
    return {
        "spec": {k: v for k, v in vars(spec).items() if k != "target"},
        "rounds": rounds,
        "stacks": {s.name: {"target": s.target, "pids": list(s.pids)} for s in stacks_},
        "summary": summarize(points, names),
        "points": points,
    }


def markdown(result: dict[str, Any]) -> str:
    spec = result["spec"]
    lines = [
        f"{result['rounds']} rounds of {spec['duration_s']} s at {spec['rate']} rps "
        f"({spec['protocol']}, {spec['candidates']} rows), stacks alternating; medians:",
        "",
        "| stack | CPU ms/request | / first | p50 ms | p99 ms | errors |",
        "|---|---|---|---|---|---|",
    ]
    for name, s in result["summary"].items():
        lines.append(
            f"| {name} | {s['cpu_ms_per_request']} | {s['cpu_over_first']} | {s['p50_ms']} "
            f"| {s['p99_ms']} | {s['errors']} |"
        )
    return "\n".join(lines)
