"""Guard (in-flight bound, drain, deadline) and LimitsMiddleware (413, 429, readiness) alone."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import grpc
import numpy as np
import pytest
from kserve.protocol.infer_type import InferInput, InferRequest

from berth.errors import DeadlineExceededError, OverloadedError, ShuttingDownError
from berth.serving.errors import WireError
from berth.serving.guard import Guard, LimitsMiddleware
from berth_transformer.model import FeatureTransformer
from berth_transformer.predictor_client import Prediction
from berth_transformer.settings import TransformerSettings


async def _call(
    middleware: LimitsMiddleware,
    path: str,
    body: bytes = b"",
    method: str = "POST",
    chunks: int = 1,
    declare_length: bool = True,
) -> tuple[int, dict[str, str], dict[str, Any]]:
    headers = [(b"content-type", b"application/json")]
    if declare_length:
        headers.append((b"content-length", str(len(body)).encode()))
    scope = {"type": "http", "method": method, "path": path, "headers": headers}
    size = max(1, len(body) // chunks)
    parts = [body[i : i + size] for i in range(0, len(body), size)] or [b""]
    messages = [
        {"type": "http.request", "body": p, "more_body": i < len(parts) - 1}
        for i, p in enumerate(parts)
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await middleware(scope, receive, send)
    start = sent[0]
    head = {k.decode(): v.decode() for k, v in start["headers"]}
    return start["status"], head, json.loads(sent[1]["body"])


async def _echo(scope: Any, receive: Any, send: Any) -> None:
    """An app that reads the body and answers its length."""
    message = await receive()
    body = json.dumps({"bytes": len(message["body"])}).encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


def test_guard_sheds_beyond_max_inflight_and_counts_back_down() -> None:
    guard = Guard(2, setting="BERTH_X_MAX_INFLIGHT")

    async def scenario() -> None:
        with guard.admit():
            assert guard.inflight == 1
            with guard.admit():  # same context: re-entrant, counted once
                assert guard.inflight == 1
        assert guard.inflight == 0

    asyncio.run(scenario())
    asyncio.run(_hold_two(guard))


async def _hold_two(guard: Guard) -> None:
    release = asyncio.Event()

    async def hold() -> None:
        with guard.admit():
            await release.wait()

    tasks = [asyncio.create_task(hold()) for _ in range(2)]
    await asyncio.sleep(0)
    assert guard.inflight == 2
    with pytest.raises(OverloadedError, match="more than 2 requests in flight"), guard.admit():
        pass
    release.set()
    await asyncio.gather(*tasks)
    assert guard.inflight == 0
    assert await guard.wait_idle(0.1)


def test_guard_refuses_new_work_while_draining() -> None:
    guard = Guard(4)
    guard.accepting = False
    with pytest.raises(ShuttingDownError) as err, guard.admit():
        pass
    assert err.value.status == 503
    assert err.value.grpc_code == grpc.StatusCode.UNAVAILABLE


def test_guard_deadline_is_504() -> None:
    guard = Guard(4, deadline_s=0.05)

    async def slow() -> None:
        async with guard.request("the predictor"):
            await asyncio.sleep(1)

    with pytest.raises(DeadlineExceededError) as err:
        asyncio.run(slow())
    assert err.value.status == 504
    assert err.value.client_message == "deadline exceeded while waiting for the predictor"
    assert guard.inflight == 0


@pytest.mark.parametrize(("chunks", "declare"), [(1, True), (8, False)])
def test_middleware_413_on_declared_and_streamed_size(chunks: int, declare: bool) -> None:
    mw = LimitsMiddleware(_echo, Guard(4), 1024, "BERTH_X_MAX_REQUEST_BYTES")
    body = b"x" * 4096
    status, _, content = asyncio.run(
        _call(mw, "/v1/models/m:predict", body, chunks=chunks, declare_length=declare)
    )
    assert status == 413
    assert "exceeds the limit of 1024 bytes (BERTH_X_MAX_REQUEST_BYTES)" in content["error"]
    status, _, content = asyncio.run(_call(mw, "/v1/models/m:predict", b"y" * 1000, chunks=4))
    assert (status, content) == (200, {"bytes": 1000})


def test_middleware_429_with_retry_after_and_readiness_while_draining() -> None:
    guard = Guard(1, retry_after_s=2)
    mw = LimitsMiddleware(_echo, guard, 1024, "X")
    guard.inflight = 1  # as if one request were being served
    status, headers, content = asyncio.run(_call(mw, "/v2/models/m/infer", b"{}"))
    assert (status, headers["retry-after"]) == (429, "2")
    assert "in flight" in content["error"]
    guard.inflight = 0
    guard.draining = True
    status, _, content = asyncio.run(_call(mw, "/v2/health/ready", method="GET"))
    assert (status, content["ready"]) == (503, False)
    guard.accepting = False
    status, headers, content = asyncio.run(_call(mw, "/v1/models/m:predict", b"{}"))
    assert (status, headers["retry-after"]) == (503, "1")
    assert headers["connection"] == "close"  # the client does not reuse a closing server's socket
    assert content == {"error": "server shutting down, retry on another replica"}


def test_wait_quiet_waits_for_arrivals_to_stop_within_its_bound() -> None:
    """The drain closes sockets only after requests stopped coming (a request the server has
    not read yet is reset when its connection closes); a sender that never stops is bounded."""
    guard = Guard(4)
    guard.accepting = False
    mw = LimitsMiddleware(_echo, guard, 1024, "X")

    async def refused_every(interval_s: float, until: float) -> None:
        while time.monotonic() < until:
            status, _, _ = await _call(mw, "/v1/models/m:predict", b"{}")
            assert status == 503
            await asyncio.sleep(interval_s)

    async def scenario() -> tuple[bool, float, bool, float]:
        started = time.monotonic()
        sender = asyncio.create_task(refused_every(0.02, started + 0.3))
        await asyncio.sleep(0.01)  # the first refusal
        quiet = await guard.wait_quiet(0.1, timeout_s=2.0)
        waited = time.monotonic() - started
        await sender
        endless = asyncio.create_task(refused_every(0.02, time.monotonic() + 1.0))
        await asyncio.sleep(0.01)
        started = time.monotonic()
        bounded = await guard.wait_quiet(0.1, timeout_s=0.2)
        capped = time.monotonic() - started
        await endless
        return quiet, waited, bounded, capped

    quiet, waited, bounded, capped = asyncio.run(scenario())
    assert quiet and waited >= 0.3 + 0.1 - 0.03  # the last arrival at ~0.3 s, then 0.1 s quiet
    assert not bounded and capped < 0.5


class SlowPredictor:
    protocol = "grpc-v2"

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s

    async def infer(self, features: np.ndarray, request_id: str) -> Prediction:
        await asyncio.sleep(self.delay_s)
        return Prediction(np.zeros(len(features), np.float32), "v1-test")


class FakeReader:
    features: list[Any] = []

    async def read(self, c: Any) -> tuple[np.ndarray, Any]:
        from berth_transformer.features import ReadReport

        return np.ones((len(c), 2), np.float32), ReadReport()


def _grpc_body() -> InferRequest:
    inputs = [
        InferInput("customer_id", [1], "INT64", data=[7]),
        InferInput("driver_id", [1], "INT64", data=[1001]),
        InferInput("trip_distance_km", [1], "FP32", data=[4.2]),
        InferInput("pickup_hour", [1], "INT64", data=[18]),
    ]
    return InferRequest(model_name="driver-ranking", infer_inputs=inputs, from_grpc=True)


def _transformer(**settings: Any) -> FeatureTransformer:
    m = FeatureTransformer("driver-ranking", TransformerSettings(**settings), "unused:1")
    m.reader = FakeReader()  # type: ignore[assignment]
    m.ready = True
    return m


def test_transformer_deadline_covers_the_predictor_call() -> None:
    model = _transformer(deadline_ms=50)
    model.predictor = SlowPredictor(2.0)  # type: ignore[assignment]
    with pytest.raises(WireError) as err:
        asyncio.run(model(_grpc_body(), {}))
    assert err.value.status_code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert err.value.error.status == 504


def test_transformer_overload_is_resource_exhausted_over_grpc() -> None:
    model = _transformer(max_inflight=1)
    model.predictor = SlowPredictor(0.2)  # type: ignore[assignment]

    async def two() -> list[Any]:
        return await asyncio.gather(
            model(_grpc_body(), {}), model(_grpc_body(), {}), return_exceptions=True
        )

    ok, shed = asyncio.run(two())
    assert not isinstance(ok, Exception)
    assert isinstance(shed, WireError)
    assert shed.status_code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert shed.error.status == 429
