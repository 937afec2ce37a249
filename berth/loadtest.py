"""Load for reliability tests and benchmarks: closed- and open-loop senders, request bodies.

:func:`closed_loop` finds what a server sustains (``concurrency`` clients back to back);
:func:`open_loop` sends at a fixed rate whatever the answers do (what overload looks like in
production).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import time
from collections.abc import Iterator, Mapping, Sequence
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
    run, tasks = Run(), []
    pending = sorted((events or {}).items())
    started = time.monotonic()
    with _heap_frozen():
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

            async def send(body: bytes) -> None:
                run.samples.append(await _one(session, url, body, timeout_s))

            n = 0
            while (now := time.monotonic()) - started < seconds:
                while pending and now - started >= pending[0][0]:
                    tasks.append(asyncio.create_task(asyncio.to_thread(pending.pop(0)[1])))
                due = started + n / rate
                if due > now:
                    await asyncio.sleep(due - now)
                    continue
                tasks.append(asyncio.create_task(send(bodies[n % len(bodies)])))
                n += 1
            await asyncio.gather(*tasks)
    run.seconds = seconds
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
