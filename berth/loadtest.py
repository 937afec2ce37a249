"""Load for reliability tests and benchmarks: closed- and open-loop senders, request bodies.

:func:`closed_loop` finds what a server sustains (``concurrency`` clients back to back);
:func:`open_loop` sends at a fixed rate whatever the answers do (what overload looks like in
production), on :func:`send_on_schedule`, the open-loop core the benchmarks' load generator
(``benchmarks/loadgen.py``) runs too.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import math
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

MODEL = "driver-ranking"
ERROR = 0  # status of a request that got no HTTP answer (connection error, client timeout)


@dataclass(frozen=True)
class Sample:
    sent: float  # monotonic time the request left
    latency: float  # seconds to the answer (or to the failure)
    status: int  # HTTP status, or ERROR
    error: str = ""


@dataclass
class Run:
    samples: list[Sample] = field(default_factory=list)
    seconds: float = 0.0

    def count(self, *statuses: int) -> int:
        return sum(1 for s in self.samples if s.status in statuses)

    def statuses(self) -> dict[int, int]:
        out: dict[int, int] = {}
        for s in self.samples:
            out[s.status] = out.get(s.status, 0) + 1
        return dict(sorted(out.items()))

    def rate(self, status: int = 200) -> float:
        return self.count(status) / self.seconds if self.seconds else 0.0

    def latency(self, q: float, *statuses: int) -> float:
        values = sorted(s.latency for s in self.samples if not statuses or s.status in statuses)
        return values[min(len(values) - 1, int(q * len(values)))] if values else 0.0


@contextlib.contextmanager
def _heap_frozen() -> Iterator[None]:
    """Keep the caller's long-lived heap out of the collector's reach for a bounded run.

    A test process holds ~650k objects once torch, Feast and a suite are loaded; one full
    collection of them stalls this sender ~190 ms on the 2-core box. An open-loop sender then
    fires the backlog as one burst, which the server rightly sheds with 429s, so the run
    measures the sender's pause, not the server. New garbage is still collected.
    """
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


async def _one(session: Any, url: str, body: bytes, timeout_s: float) -> Sample:
    import aiohttp

    sent = time.monotonic()
    try:
        async with session.post(
            url,
            data=body,
            headers={"content-type": "application/json"},
            timeout=aiohttp.ClientTimeout(total=timeout_s),
        ) as resp:
            await resp.read()
            return Sample(sent, time.monotonic() - sent, resp.status)
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        return Sample(sent, time.monotonic() - sent, ERROR, type(exc).__name__)


async def closed_loop(
    url: str, payload: object, concurrency: int, seconds: float, timeout_s: float = 10.0
) -> Run:
    """``concurrency`` clients, each sending its next request when the last one is answered."""
    import aiohttp

    body, run = json.dumps(payload).encode(), Run()
    stop = time.monotonic() + seconds

    async def client(session: aiohttp.ClientSession) -> None:
        while time.monotonic() < stop:
            run.samples.append(await _one(session, url, body, timeout_s))

    started = time.monotonic()
    with _heap_frozen():
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            await asyncio.gather(*(client(session) for _ in range(concurrency)))
    run.seconds = time.monotonic() - started
    return run


@dataclass
class Dispatched:
    """What :func:`send_on_schedule` saw of each request ``i``: its intended time
    (``t0 + offsets[i]``), when it left and was answered (``nan`` if never), and what ``send``
    returned (the exception's type name if it raised; ``overflow`` if it was never sent)."""

    t0: float
    sent_at: list[float]
    done_at: list[float]
    results: list[object]
    wall_s: float = 0.0
    in_flight: int = 0

    async def record(
        self, i: int, send: Callable[[int], Awaitable[object]], clock: Callable[[], float]
    ) -> None:
        self.sent_at[i] = clock()
        try:
            self.results[i] = await send(i)
        except Exception as exc:  # a bug in the sender must not stop the schedule
            self.results[i] = type(exc).__name__
        self.done_at[i] = clock()
        self.in_flight -= 1


async def send_on_schedule(
    offsets: Sequence[float],
    send: Callable[[int], Awaitable[object]],
    *,
    clock: Callable[[], float] = time.monotonic,
    lead_s: float = 0.0,
    max_outstanding: int = 0,
    overflow: object = "client_overflow",
    settle_s: float | None = None,
    events: Mapping[float, Callable[[], object]] | None = None,
) -> Dispatched:
    """The one open-loop sender: request ``i`` leaves at ``t0 + offsets[i]`` (``t0`` is
    ``lead_s`` after the call) whatever the answers do.

    ``max_outstanding`` (0: no bound): a request due while that many are in flight is not sent
    and its result is ``overflow``. ``settle_s``: after the last send, wait at most this long for
    answers, then cancel the rest (``None``: wait for all). ``events`` maps seconds after
    ``t0`` to callables run in a thread at that time (stop a dependency, send a signal).
    """
    loop, n = asyncio.get_running_loop(), len(offsets)
    started = clock()
    t0 = started + lead_s
    run = Dispatched(t0, [math.nan] * n, [math.nan] * n, [None] * n)
    tasks: set[asyncio.Task[None]] = set()
    pending, threads = sorted((events or {}).items()), []
    i = 0
    while i < n:
        now = clock()
        while pending and t0 + pending[0][0] <= now:
            threads.append(asyncio.ensure_future(asyncio.to_thread(pending.pop(0)[1])))
        while i < n and t0 + offsets[i] <= now:
            if max_outstanding and run.in_flight >= max_outstanding:
                run.results[i], run.sent_at[i], run.done_at[i] = overflow, now, now
            else:
                run.in_flight += 1
                task = loop.create_task(run.record(i, send, clock))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            i += 1
        if i < n:
            await asyncio.sleep(max(0.0, t0 + offsets[i] - clock()))
    if tasks:  # every request has its own timeout; ``settle_s`` is a safety net
        await asyncio.wait(set(tasks), timeout=settle_s)
    for task in list(tasks):
        task.cancel()
    await asyncio.gather(*threads)
    run.wall_s = clock() - started
    return run


async def open_loop(
    url: str,
    payload: object,
    rate: float,
    seconds: float,
    timeout_s: float = 10.0,
    events: dict[float, Any] | None = None,
    rotate: Sequence[object] = (),
) -> Run:
    """Send ``rate`` requests per second for ``seconds``, never waiting for answers.

    ``events`` maps seconds after the start to callables run (in a thread) at that time:
    stop a dependency, send a signal. ``rotate``: payloads sent in turn instead of
    ``payload`` (e.g. many customers, for a customer-sticky canary split).
    """
    import aiohttp

    bodies = [json.dumps(p).encode() for p in (rotate or [payload])]
    offsets = [k / rate for k in range(math.ceil(rate * seconds))]
    with _heap_frozen():
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

            async def send(k: int) -> Sample:
                sample = await _one(session, url, bodies[k % len(bodies)], timeout_s)
                run.samples.append(sample)  # in answer order
                return sample

            run = Run(seconds=seconds)
            done = await send_on_schedule(offsets, send, events=events)
    for k, result in enumerate(done.results):
        if not isinstance(result, Sample):  # the sender raised: no answer
            latency = done.done_at[k] - done.sent_at[k]
            run.samples.append(Sample(done.sent_at[k], latency, ERROR, str(result)))
    return run


# The transformer's request fields and their Open Inference V2 datatypes.
REQUEST_FIELDS = ("customer_id", "driver_id", "trip_distance_km", "pickup_hour")
V2_DATATYPES = {"trip_distance_km": "FP32"}  # the others: INT64


def v2_inputs(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Ranking rows as Open Inference V2 REST ``inputs``: one typed 1-D tensor per field."""
    return [
        {
            "name": name,
            "datatype": V2_DATATYPES.get(name, "INT64"),
            "shape": [len(rows)],
            "data": [r[name] for r in rows],
        }
        for name in REQUEST_FIELDS
    ]


def grpc_request(rows: Sequence[Mapping[str, Any]], model: str = MODEL) -> Any:
    """The same rows as a gRPC V2 ``ModelInferRequest`` (typed ``contents``)."""
    from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb

    kinds = {"INT64": "int64_contents", "FP32": "fp32_contents"}
    return pb.ModelInferRequest(
        model_name=model,
        inputs=[
            pb.ModelInferRequest.InferInputTensor(
                name=t["name"],
                datatype=t["datatype"],
                shape=t["shape"],
                contents=pb.InferTensorContents(**{kinds[t["datatype"]]: t["data"]}),
            )
            for t in v2_inputs(rows)
        ],
    )


def instances(n: int = 5, first_driver: int = 1001, customer: int = 7) -> dict[str, Any]:
    """A KServe V1 body with ``n`` candidate drivers."""
    return {
        "instances": [
            {
                "customer_id": customer,
                "driver_id": first_driver + i,
                "trip_distance_km": 4.2,
                "pickup_hour": 18,
            }
            for i in range(n)
        ]
    }
