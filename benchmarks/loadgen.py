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
import ipaddress
import json
import math
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlparse

import numpy as np

from benchmarks import payloads
from berth.loadtest import grpc_request, send_on_schedule

LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
PERCENTILES = {"p50": 50.0, "p90": 90.0, "p99": 99.0, "p99.9": 99.9}
OK = "ok"


@dataclass(frozen=True)
class LoadSpec:
    """One point: ``rate`` requests/s of ``protocol`` to ``target`` for ``duration_s``."""

    protocol: str  # "v1" | "v2" | "grpc-v2" | "v2-binary" (REST V2, binary tensor extension)
    target: str  # REST: http://127.0.0.1:PORT; gRPC: 127.0.0.1:PORT
    rate: float
    duration_s: float
    arrivals: str = "constant"  # "constant" | "poisson"
    warmup_s: float = 0.5  # sent at the same rate first, not counted
    candidates: int = 10  # rows per request
    payload: str = "ranking"  # "ranking" (transformer) | "features" (predictor alone, V2 only)
    model: str = payloads.MODEL
    max_outstanding: int = 512
    timeout_s: float = 2.0
    seed: int = 0
    keep_latencies: bool = False  # also return every measured latency (for pooling points)
    allow_remote: bool = False  # a target off this machine (``--allow-remote``: your own stack)
    drivers: tuple[int, int] = (1001, 1120)
    customers: tuple[int, int] = (1, 400)
    label: str = ""

    def check(self) -> None:
        if self.protocol not in payloads.PROTOCOLS:
            raise ValueError(f"protocol must be one of {payloads.PROTOCOLS}, got {self.protocol}")
        if self.payload not in ("ranking", "features"):
            raise ValueError(f"payload must be ranking or features, got {self.payload}")
        if self.payload == "features" and self.protocol == "v1":
            raise ValueError("the predictor alone speaks V2 (protocol v2 or grpc-v2)")
        if self.protocol == "v2-binary" and self.payload != "features":
            raise ValueError("v2-binary sends model rows: use it with --payload features")
        if self.arrivals not in ("constant", "poisson"):
            raise ValueError(f"arrivals must be constant or poisson, got {self.arrivals}")
        if not (0 < self.rate <= 100_000):
            raise ValueError(f"rate must be in (0, 100000], got {self.rate}")
        if not (0 < self.duration_s <= 600) or not (0 <= self.warmup_s <= 60):
            raise ValueError("duration_s must be in (0, 600] and warmup_s in [0, 60]")
        refuse_remote(self.target, self.allow_remote)


class RemoteTargetRefused(ValueError):
    """A non-loopback target without ``allow_remote``: nothing was sent."""


def refuse_remote(target: str, allow_remote: bool) -> None:
    """Raise :class:`RemoteTargetRefused` for a target off this machine unless allowed."""
    host = _host(target)
    if allow_remote or _is_loopback(host):
        return
    raise RemoteTargetRefused(
        f"refusing to send load to {host or target!r}: not a loopback address (127.0.0.1, ::1, "
        "localhost). Load tests reach only this machine unless you say otherwise: pass "
        "--allow-remote to load a stack you own (nothing was sent)."
    )


@dataclass
class LoadResult:
    """What one point measured. Latencies in milliseconds, from the intended send time."""

    spec: dict[str, Any]
    sent: int = 0  # in the measured window
    ok: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    achieved_rps: float = 0.0
    latency_ms: dict[str, float] = field(default_factory=dict)
    service_ms: dict[str, float] = field(default_factory=dict)  # from the actual send
    send_lag_ms: dict[str, float] = field(default_factory=dict)  # actual - intended send
    completed_total: int = 0  # warm-up included: the denominator of CPU per request
    wall_s: float = 0.0
    latencies_ms: list[float] | None = None  # with spec.keep_latencies

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


def _is_loopback(host: str) -> bool:
    if host in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback  # all of 127.0.0.0/8
    except ValueError:
        return False


def _host(target: str) -> str:
    if "://" in target:
        return urlparse(target).hostname or ""
    host = target.rsplit(":", 1)[0]
    return host.strip("[]")


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


Sender = Callable[[int], Awaitable[str]]


async def _rest_sender(spec: LoadSpec, stack: Any) -> tuple[Sender, Callable[[], Awaitable[None]]]:
    import aiohttp

    headers = [{"content-type": "application/json"}]
    if spec.protocol == "v2-binary":
        rows = payloads.feature_rows(64, spec.candidates, seed=spec.seed)
        binary = [payloads.predictor_v2_binary_body(m) for m in rows]
        bodies = [body for body, _ in binary]
        headers = [
            {"content-type": "application/octet-stream", payloads.BINARY_HEADER: str(n)}
            for _, n in binary
        ]
    elif spec.payload == "features":
        bodies = [
            payloads.predictor_v2_body(m)
            for m in payloads.feature_rows(64, spec.candidates, seed=spec.seed)
        ]
    else:
        rows = payloads.ranking_requests(
            256, spec.candidates, spec.seed, spec.drivers, spec.customers
        )
        encode = payloads.v1_body if spec.protocol == "v1" else payloads.v2_body
        bodies = [encode(r) for r in rows]
    url = spec.target.rstrip("/") + payloads.rest_path(spec.protocol, spec.model)
    connector = aiohttp.TCPConnector(limit=spec.max_outstanding, force_close=False)
    session = await stack.enter_async_context(aiohttp.ClientSession(connector=connector))
    timeout = aiohttp.ClientTimeout(total=spec.timeout_s)

    async def send(i: int) -> str:
        try:
            async with session.post(
                url,
                data=bodies[i % len(bodies)],
                headers=headers[i % len(headers)],
                timeout=timeout,
            ) as resp:
                await resp.read()
                return OK if resp.status == 200 else str(resp.status)
        except TimeoutError:
            return "timeout"
        except aiohttp.ClientError as exc:
            return type(exc).__name__
        except OSError:
            return "oserror"

    async def close() -> None:
        await session.close()

    return send, close


async def _grpc_sender(spec: LoadSpec, stack: Any) -> tuple[Sender, Callable[[], Awaitable[None]]]:
    import grpc
    from kserve.protocol.grpc.grpc_predict_v2_pb2_grpc import GRPCInferenceServiceStub

    if spec.payload == "features":
        requests = [
            payloads.predictor_grpc_request(m, spec.model)
            for m in payloads.feature_rows(64, spec.candidates, seed=spec.seed)
        ]
    else:
        rows = payloads.ranking_requests(
            256, spec.candidates, spec.seed, spec.drivers, spec.customers
        )
        requests = [grpc_request(r, spec.model) for r in rows]
    channel = grpc.aio.insecure_channel(spec.target)
    stub = GRPCInferenceServiceStub(channel)

    async def send(i: int) -> str:
        try:
            await stub.ModelInfer(requests[i % len(requests)], timeout=spec.timeout_s)
            return OK
        except grpc.aio.AioRpcError as exc:
            code = exc.code()
            return "timeout" if code == grpc.StatusCode.DEADLINE_EXCEEDED else f"grpc:{code.name}"

    async def close() -> None:
        await channel.close()

    return send, close


async def run_point(spec: LoadSpec) -> LoadResult:
    """Send ``spec.rate`` requests/s for ``warmup_s + duration_s``; summarize the window."""
    spec.check()
    offsets = schedule(spec.rate, spec.warmup_s + spec.duration_s, spec.arrivals, spec.seed)
    async with contextlib.AsyncExitStack() as stack:
        make = _grpc_sender if spec.protocol == "grpc-v2" else _rest_sender
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
