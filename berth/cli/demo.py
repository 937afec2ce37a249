"""``berth demo``: ``berth up``, send real ranking requests, print the ranked drivers, exit."""

from __future__ import annotations

import argparse
import json
import statistics
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from berth.cli.options import add_stack_arguments, stack_from_args
from berth.loadtest import grpc_request, v2_inputs
from berth.local import Endpoints, LocalModeError, stopping_on_signals
from berth.scrape import scrape
from berth.stack import free_port

FIRST_DRIVER = 1001
SCENARIOS = [
    ("customer 7, 4.2 km at 18:00 (rush hour)", 7, 4.2, 18),
    ("customer 42, 23.5 km at 08:00 (rush hour, long trip)", 42, 23.5, 8),
    ("customer 42, 23.5 km at 14:00", 42, 23.5, 14),
]
Echo = Callable[[str], None]


def add_command(sub: Any) -> None:
    demo = sub.add_parser("demo", help="berth up, send ranking requests, print, exit")
    add_stack_arguments(demo)
    demo.add_argument("--port", type=int, default=0, help="transformer HTTP port (0: free)")
    demo.add_argument("--grpc-port", type=int, default=0, help="transformer gRPC port (0: free)")
    demo.add_argument("--candidates", type=int, default=8, help="drivers per ranking request")
    demo.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    started = time.monotonic()
    stack = stack_from_args(args, args.port or free_port(), args.grpc_port or free_port())
    with stopping_on_signals():
        try:
            endpoints = stack.start()
            print(
                f"\nup in {time.monotonic() - started:.1f}s: transformer {endpoints.http} "
                f"(gRPC {endpoints.grpc}), model {endpoints.model} {endpoints.version}, "
                f"online store {endpoints.online_store}",
                flush=True,
            )
            demo_requests(endpoints, args.candidates, print)
        except KeyboardInterrupt:
            return 130
        except (urllib.error.URLError, OSError) as exc:
            raise LocalModeError(f"demo request failed: {exc}; logs in {stack.logs}") from exc
        finally:
            stack.stop()
    print(f"\ndemo finished in {time.monotonic() - started:.1f}s; everything stopped.")
    return 0


def demo_requests(ep: Endpoints, candidates: int, echo: Echo) -> None:
    """Rank the scenarios' candidates, compare the protocols, time V1, report filled values."""
    for title, customer, km, hour in SCENARIOS:
        rows = _candidates(customer, km, hour, candidates)
        scores = post_json(f"{ep.http}/v1/models/{ep.model}:predict", {"instances": rows})
        ranked = sorted(
            zip(scores["predictions"], (r["driver_id"] for r in rows), strict=True), reverse=True
        )
        echo(f"\n{title}: {candidates} candidates ranked by P(accept)")
        for rank, (score, driver) in enumerate(ranked, 1):
            echo(f"  {rank:2d}. driver {driver}  {score:.4f}  {'#' * round(score * 40)}")
    rows = _candidates(7, 4.2, 18, candidates)
    _compare_protocols(ep, rows, echo)
    latencies = []
    for _ in range(30):
        started = time.perf_counter()
        post_json(f"{ep.http}/v1/models/{ep.model}:predict", {"instances": rows})
        latencies.append((time.perf_counter() - started) * 1000)
    echo(
        f"latency over 30 sequential V1 requests of {candidates} candidates: "
        f"p50 {statistics.median(latencies):.1f} ms, max {max(latencies):.1f} ms"
    )
    _report_defaults(_metric_totals(ep.http), echo)


def _candidates(customer: int, km: float, hour: int, count: int) -> list[dict[str, Any]]:
    return [
        {
            "customer_id": customer,
            "driver_id": FIRST_DRIVER + i,
            "trip_distance_km": km,
            "pickup_hour": hour,
        }
        for i in range(count)
    ]


def _compare_protocols(ep: Endpoints, rows: list[dict[str, Any]], echo: Echo) -> None:
    v1 = post_json(f"{ep.http}/v1/models/{ep.model}:predict", {"instances": rows})["predictions"]
    v2 = post_json(f"{ep.http}/v2/models/{ep.model}/infer", {"inputs": v2_inputs(rows)})
    v2_scores = next(o["data"] for o in v2["outputs"] if o["name"] == "score")
    by_grpc = grpc_scores(ep.grpc, ep.model, rows)
    same = _same(v1, v2_scores) and _same(v1, by_grpc)
    echo(f"\nV1 REST, V2 REST and V2 gRPC agree on the scores: {'yes' if same else 'NO'}")


def _report_defaults(totals: dict[str, float], echo: Echo) -> None:
    if not totals:
        echo("every feature value was present and fresh (no defaults filled)")
        return
    echo("values filled with the artifact's defaults (rows, per view):")
    for key, value in sorted(totals.items()):
        echo(f"  {key}: {value:.0f}")
    if any(k.startswith("stale") for k in totals):
        echo(
            "  (stale: the data is older than the view's TTL; `berth build --regenerate` "
            "makes fresh data)"
        )


def post_json(url: str, body: dict[str, Any], timeout_s: float = 10.0) -> dict[str, Any]:
    """POST ``body`` as JSON, the parsed JSON answer."""
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=timeout_s) as resp:
        result: dict[str, Any] = json.loads(resp.read())
        return result


def grpc_scores(target: str, model: str, rows: list[dict[str, Any]]) -> list[float]:
    """The scores of ``rows`` from an Open Inference V2 ``ModelInfer`` at ``target``."""
    import grpc
    from kserve.protocol.grpc.grpc_predict_v2_pb2_grpc import GRPCInferenceServiceStub

    with grpc.insecure_channel(target) as channel:
        response = GRPCInferenceServiceStub(channel).ModelInfer(
            grpc_request(rows, model), timeout=10
        )
    return list(response.outputs[0].contents.fp32_contents)


def _metric_totals(http: str) -> dict[str, float]:
    """``berth_transformer_features_{missing,stale}_total`` summed per (kind, view)."""
    metrics = scrape(http, timeout_s=5)
    totals: dict[str, float] = {}
    for kind in ("missing", "stale"):
        for sample in metrics.select(f"berth_transformer_features_{kind}_total"):
            key = f"{kind} {sample.labels['view']}"
            totals[key] = totals.get(key, 0) + float(sample.value)
    return totals


def _same(a: list[float], b: list[float]) -> bool:
    import numpy as np

    return bool(np.array_equal(np.asarray(a, np.float32), np.asarray(b, np.float32)))
