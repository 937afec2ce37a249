"""The argument parsers of ``python -m benchmarks``, one function per group of commands."""

from __future__ import annotations

import argparse
from typing import Any

from benchmarks.compare_plans import DEFAULT_ARTIFACT
from benchmarks.payloads import PROTOCOLS


def add_commands(sub: Any) -> None:
    """Add every command to the ``python -m benchmarks`` subparsers ``sub``."""
    _compare_parser(sub)
    _load_parsers(sub)
    _component_parsers(sub)
    _study_parsers(sub)
    _tool_parsers(sub)


def _compare_parser(sub: Any) -> None:
    """ "compare": every benchmark in one run."""
    c = sub.add_parser("compare", help="everything: e2e Berth vs baseline, components, report")
    c.add_argument("--out", required=True, help="results.json, report.md, latency.png go here")
    size = c.add_mutually_exclusive_group()
    size.add_argument(
        "--quick", action="store_true", help="short points (about 10 minutes with the peers)"
    )
    size.add_argument(
        "--smoke", action="store_true", help="tiny run that only checks the harness (no peers)"
    )
    c.add_argument("--artifact", default=str(DEFAULT_ARTIFACT), help="artifact directory")
    c.add_argument("--data", help="parquet data dir to copy (default: generate fresh data)")
    c.add_argument("--bound-ms", type=float, default=10.0, help="p99 bound of the sweeps")
    c.add_argument("--candidates", type=int, default=10, help="drivers per ranking request")
    c.add_argument("--arrivals", choices=["constant", "poisson"], default="constant")
    c.add_argument(
        "--quiet-wait",
        type=float,
        default=0.0,
        metavar="S",
        help="first wait up to S seconds for the machine to be under 25%% busy (shared hosts)",
    )
    c.add_argument("--no-profile", action="store_true", help="skip the py-spy profile")
    c.add_argument(
        "--nice",
        type=int,
        default=0,
        help="niceness of every benchmark process (e.g. -10 as root: less disturbed by other "
        "load on a shared machine)",
    )


def _load_parsers(sub: Any) -> None:
    """ "load" and "sweep": open-loop load against a running server."""
    lo = sub.add_parser("load", help="one open-loop point against a running loopback server")
    add_load_args(lo, "requests per second")

    sw = sub.add_parser("sweep", help="raise the rate until p99 breaks --bound-ms")
    add_load_args(sw, "starting rate")
    sw.add_argument("--factor", type=float, default=1.5)
    sw.add_argument("--refine", type=int, default=2)
    sw.add_argument(
        "--bound-ms", type=float, nargs="+", default=[10.0], help="one or more p99 bounds"
    )
    sw.add_argument("--pid", type=int, action="append", default=[], help="server pid to meter")

    il = sub.add_parser(
        "interleave", help="running stacks side by side: the same point to each, alternating"
    )
    add_load_args(il, "requests per second", target=False)
    il.add_argument(
        "--stack", action="append", required=True, metavar="NAME=TARGET", help="two or more"
    )
    il.add_argument(
        "--pid",
        action="append",
        default=[],
        metavar="NAME=PID",
        help="a server process of stack NAME (its children count too); repeat per process",
    )
    il.add_argument("--rounds", type=int, default=12, help="points per stack")
    il.add_argument("--out", help="also write interleave.json and interleave.md here")


def _component_parsers(sub: Any) -> None:
    """ "predictor" and "features": one component alone."""
    pr = sub.add_parser("predictor", help="ORT int8 vs fp32 vs torch eager, in-process")
    pr.add_argument("--artifact", default=str(DEFAULT_ARTIFACT))
    pr.add_argument("--build", help="<artifact>.build with model.pt (default: beside --artifact)")
    pr.add_argument("--batches", help="default 1,10,64,256 (cpu), 1,10,64,256,1024 (cuda)")
    pr.add_argument("--seconds", type=float, default=2.0)
    pr.add_argument("--widths", default="", help="extra MLP widths, e.g. 512x256,1024x512")
    pr.add_argument(
        "--provider",
        choices=["cpu", "cuda"],
        default="cpu",
        help="cuda: ORT's CUDA (and TensorRT) providers beside CPU, in their own venv (GPU only)",
    )

    fe = sub.add_parser("features", help="feature read: Berth vs Feast SDK vs raw Redis")
    fe.add_argument("--artifact", default=str(DEFAULT_ARTIFACT))
    fe.add_argument("--data", help="parquet data dir to copy (default: generate fresh data)")
    fe.add_argument("--candidates", type=int, default=10)
    fe.add_argument("--reads", type=int, default=1000)


def _study_parsers(sub: Any) -> None:
    """ "canary" and "explain": rollout analysis and explainer studies."""
    ca = sub.add_parser("canary", help="false-alarm and miss rates of rollout analyze (A/A, A/B)")
    ca.add_argument("--out", required=True, help="canary.json and canary.md go here")
    ca.add_argument("--artifact", default="artifacts/driver-ranking", help="artifact directory")
    ca.add_argument("--repo", default="feature_repo", help="feature repo with its data/")
    ca.add_argument("--scenarios", default="aa,latency,errors", help="comma-separated")
    ca.add_argument("--analyses", type=int, default=20, help="analyses per scenario")
    ca.add_argument("--rate", type=float, default=100.0, help="requests per second")
    ca.add_argument("--canary-percent", type=float, default=50.0)
    ca.add_argument("--window", type=int, default=12, help="seconds per look (fresh windows)")
    ca.add_argument("--max-looks", type=int, default=5, help="looks before an analysis holds")

    ex = sub.add_parser("explain", help=":explain cost and :predict p99 under explain load")
    ex.add_argument("--out", required=True, help="explain.json and explain.md go here")
    ex.add_argument("--artifact", default=str(DEFAULT_ARTIFACT))
    ex.add_argument("--data", help="parquet data dir to copy (default: generate fresh data)")
    ex.add_argument("--seconds", type=float, default=20.0, help="each :predict latency point")
    ex.add_argument("--explainers", type=int, default=2, help="explain clients in the load")


def _tool_parsers(sub: Any) -> None:
    """ "report", "capacity" and "batch"."""
    rp = sub.add_parser("report", help="rewrite report.md and latency.png from results.json")
    rp.add_argument("--out", required=True)

    ca = sub.add_parser("capacity", help="replicas, CPU and Redis shards for a target load")
    ca.add_argument("--rps", type=float, required=True, help="target requests per second")
    ca.add_argument("--p99-ms", type=float, required=True, help="p99 latency bound (ms)")
    ca.add_argument("--results", help="results.json of `compare` (default: README's last run)")
    ca.add_argument("--headroom", type=float, default=0.3, help="spare share of every resource")
    ca.add_argument("--redis-hmget-per-s", type=float, help="HMGET/s per shard (skip measuring)")
    ca.add_argument("--values", default="capacity-values.yaml", help="values file to write")
    ba = sub.add_parser("batch", help="berth batch-score: local engine vs Ray, rows/s")
    ba.add_argument("--out", required=True, help="batch.json, batch.md, progress.jsonl go here")
    ba.add_argument("--artifact", default=str(DEFAULT_ARTIFACT), help="artifact directory")
    ba.add_argument("--rows", type=int, default=1_000_000, help="entity rows generated")
    ba.add_argument("--workers", type=int, default=2, help="Ray workers")
    ba.add_argument("--chunk-rows", type=int, default=100_000)
    ba.add_argument("--batch-rows", type=int, default=8192)


def add_load_args(p: argparse.ArgumentParser, rate_help: str, target: bool = True) -> None:
    if target:
        p.add_argument(
            "--target", required=True, help="http://127.0.0.1:PORT, or 127.0.0.1:PORT for gRPC"
        )
    p.add_argument("--protocol", choices=PROTOCOLS, default="v1")
    p.add_argument("--rate", type=float, default=50.0, help=rate_help)
    p.add_argument("--duration", type=float, default=5.0, help="seconds per point (after warm-up)")
    p.add_argument("--warmup", type=float, default=0.5)
    p.add_argument("--arrivals", choices=["constant", "poisson"], default="constant")
    p.add_argument("--candidates", type=int, default=10, help="rows per request")
    p.add_argument(
        "--payload",
        choices=["ranking", "features"],
        default="ranking",
        help="ranking: the transformer's request; features: model rows for the predictor alone",
    )
    p.add_argument("--model", default="driver-ranking")
    p.add_argument("--timeout", type=float, default=2.0)
    p.add_argument("--max-outstanding", type=int, default=512)
    p.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a target that is not loopback (a stack you own: this sends real load to it)",
    )
