"""Open-loop load: requests leave on a schedule, whatever the server does.

Each request has an *intended* send time (``t0 + i / rate``, or Poisson gaps at ``rate``);
its latency is measured from that time to its answer. A server that stalls therefore shows
every request that queued behind the stall at its full wait -- the "coordinated omission" a
closed-loop client (send, wait, send) hides. Sending never waits for answers; what bounds the
run is the duration, the per-request timeout, and ``max_outstanding`` (a request due while that
many are in flight is not sent and counts as the error ``client_overflow``).

Targets are loopback only unless a spec sets ``allow_remote`` (``--allow-remote`` on the
CLI: an SRE aiming it at their own stack). One process runs one point at a time;
:class:`LoadWorker` keeps one such process for a whole sweep
(``python -m benchmarks.loadgen --worker``: one JSON spec per line on stdin, one JSON result per
line on stdout), so the generator does not share its interpreter with the code that starts and
measures the servers. The sending itself is :func:`berth.loadtest.send_on_schedule`, the one
open-loop core (the reliability tests' sender runs it too).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import subprocess
import sys
import time
from dataclasses import asdict
from typing import Any

import numpy as np

from benchmarks.loadgen_senders import OK, Sender, grpc_sender, rest_sender
from benchmarks.loadgen_spec import LoadResult, LoadSpec, RemoteTargetRefused, refuse_remote
from berth.loadtest import send_on_schedule

__all__ = [
    "LoadResult",
    "LoadSpec",
    "LoadWorker",
    "RemoteTargetRefused",
    "refuse_remote",
    "run_point",
    "run_sync",
    "schedule",
    "summarize",
]

PERCENTILES = {"p50": 50.0, "p90": 90.0, "p99": 99.0, "p99.9": 99.9}


def schedule(rate: float, seconds: float, arrivals: str, seed: int) -> np.ndarray:
    """Intended send offsets (s) in ``[0, seconds)``: evenly spaced or Poisson."""
    if arrivals == "constant":
        return np.arange(math.ceil(rate * seconds)) / rate
    rng = np.random.default_rng(seed)
    expected = int(rate * seconds * 1.2 + 10 * math.sqrt(rate * seconds) + 10)
    offsets = np.cumsum(rng.exponential(1.0 / rate, expected))
    while offsets[-1] < seconds:  # bounded: each round adds ~20% of the run
        more = np.cumsum(rng.exponential(1.0 / rate, expected)) + offsets[-1]
        offsets = np.concatenate([offsets, more])
    return offsets[offsets < seconds]


def summarize(values_ms: np.ndarray) -> dict[str, float]:
    if len(values_ms) == 0:
        return {}
    out = {k: float(np.percentile(values_ms, q)) for k, q in PERCENTILES.items()}
    out["max"] = float(values_ms.max())
    out["mean"] = float(values_ms.mean())
    return {k: round(v, 3) for k, v in out.items()}


async def run_point(spec: LoadSpec) -> LoadResult:
    """Send ``spec.rate`` requests/s for ``warmup_s + duration_s``; summarize the window."""
    spec.check()
    offsets = schedule(spec.rate, spec.warmup_s + spec.duration_s, spec.arrivals, spec.seed)
    async with contextlib.AsyncExitStack() as stack:
        make = grpc_sender if spec.protocol == "grpc-v2" else rest_sender
        send, close = await make(spec, stack)
        await _prime(send)
        done = await send_on_schedule(
            offsets.tolist(),
            send,
            clock=time.perf_counter,  # uvloop's loop.time() only has millisecond resolution
            lead_s=0.02,
            max_outstanding=spec.max_outstanding,
            settle_s=spec.timeout_s + 2.0,
        )
        closing = time.perf_counter()
        await close()
        wall = done.wall_s + time.perf_counter() - closing
    status = [r if r is None else str(r) for r in done.results]
    sent_at, done_at = np.array(done.sent_at), np.array(done.done_at)
    return _result(spec, offsets, done.t0, sent_at, done_at, status, wall)


async def _prime(send: Sender) -> None:
    """One request before the clock starts: connection set-up is not a latency sample."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(send(0), 10.0)


def _result(
    spec: LoadSpec,
    offsets: np.ndarray,
    t0: float,
    sent_at: np.ndarray,
    done_at: np.ndarray,
    status: list[str | None],
    wall: float,
) -> LoadResult:
    window = offsets >= spec.warmup_s
    intended = t0 + offsets
    codes = np.array([s if s is not None else "unfinished" for s in status], dtype=object)
    ok = window & (codes == OK)
    errors: dict[str, int] = {}
    for code in codes[window & (codes != OK)]:
        errors[str(code)] = errors.get(str(code), 0) + 1
    latency = (done_at - intended)[ok] * 1000
    service = (done_at - sent_at)[ok] * 1000
    lag = (sent_at - intended)[window & ~np.isnan(sent_at)] * 1000
    return LoadResult(
        spec=asdict(spec),
        sent=int(window.sum()),
        ok=int(ok.sum()),
        errors=dict(sorted(errors.items())),
        achieved_rps=round(float(ok.sum()) / spec.duration_s, 2),
        latency_ms=summarize(latency),
        service_ms=summarize(service),
        send_lag_ms={k: v for k, v in summarize(lag).items() if k in ("p50", "p99", "max")},
        completed_total=int(sum(1 for s in status if s is not None and s != "client_overflow")),
        wall_s=round(wall, 3),
        latencies_ms=[round(float(v), 4) for v in latency] if spec.keep_latencies else None,
    )


def run_sync(spec: LoadSpec) -> LoadResult:
    """:func:`run_point` on a fresh event loop (uvloop when installed: less generator CPU)."""
    try:
        import uvloop

        return uvloop.run(run_point(spec))
    except ImportError:
        return asyncio.run(run_point(spec))


def spec_from_dict(data: dict[str, Any]) -> LoadSpec:
    fields = dict(data)
    for key in ("drivers", "customers"):
        if key in fields:
            fields[key] = tuple(fields[key])
    return LoadSpec(**fields)


def _worker() -> int:
    """Serve specs from stdin until EOF: one JSON line in, one JSON line out."""
    sys.argv = sys.argv[:1]  # `import kserve` (gRPC stubs) parses sys.argv: leave it nothing
    # Import everything a point may need now, so no import lands in a point's CPU window.
    import aiohttp  # noqa: F401
    import grpc  # noqa: F401
    from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc  # noqa: F401

    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            result: dict[str, Any] = asdict(run_sync(spec_from_dict(json.loads(line))))
            if result["latencies_ms"] is None:
                del result["latencies_ms"]
        except Exception as exc:
            result = {"error": f"{type(exc).__name__}: {exc}"}
        sys.stdout.write(json.dumps(result) + "\n")
        sys.stdout.flush()
    return 0


class LoadWorker:
    """A generator process kept for many points (started once, stopped with :meth:`close`)."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.loadgen", "--worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def run(self, spec: LoadSpec) -> dict[str, Any]:
        spec.check()
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(asdict(spec)) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"load generator exited with {self.proc.poll()}")
        result: dict[str, Any] = json.loads(line)
        if "error" in result:
            raise RuntimeError(f"load generator failed: {result['error']}")
        return result

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.loadgen")
    parser.add_argument("--worker", action="store_true", help="serve JSON specs on stdin")
    args = parser.parse_args(argv)
    if args.worker:
        return _worker()
    parser.error("use --worker, or `python -m benchmarks load ...` for one point")
    return 2


if __name__ == "__main__":
    sys.exit(main())
