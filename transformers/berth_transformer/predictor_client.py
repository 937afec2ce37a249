"""Calls to the predictor over Open Inference V2: gRPC (one ``grpc.aio`` channel,
:mod:`predictor_grpc`) or REST (pooled keep-alive connections, :mod:`predictor_rest`), each
with a timeout, bounded retries and one error mapping (here, with what both share).

The predictor's errors keep their meaning: its 400 / INVALID_ARGUMENT is a 400 with its
message, 429 / RESOURCE_EXHAUSTED a 429, unreachable a 503 ("predictor unavailable"), a
timeout a 504. KServe's own transformer client is not used: it turns every HTTP error into a
500 and its REST retry setting does nothing in 0.21.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import grpc
import numpy as np
import orjson

from berth.errors import (
    BerthError,
    DeadlineExceededError,
    DependencyUnavailableError,
    InvalidInputError,
    OverloadedError,
)
from berth_transformer import metrics

T = TypeVar("T")
RETRY_MIN_S = 0.01  # a retry with less time left than this is not worth sending
PREDICTOR = "predictor"
RETRY_BACKOFF_S = 0.05  # doubled per retry


@dataclass(frozen=True)
class Link:
    """How a client reaches one predictor: timeout, bounded retries, TLS."""

    timeout_s: float
    retries: int = 1
    tls: bool = False
    ca_bundle: Path | None = None

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_bundle) if self.ca_bundle else None)

    def grpc_credentials(self) -> grpc.ChannelCredentials:
        roots = self.ca_bundle.read_bytes() if self.ca_bundle else None
        return grpc.ssl_channel_credentials(root_certificates=roots)


async def with_retries(
    call: Callable[[float, bool], Awaitable[T]], retries: int, timeout_s: float
) -> T:
    """``call(seconds_left, retry)``, again up to ``retries`` times (backoff 50 ms, doubling)
    while it fails before the predictor answered it (:class:`DependencyUnavailableError`:
    UNAVAILABLE, a refused or reset connection, 502/503). ``retry`` is true from the second
    attempt: the client sends it over a new connection (a fresh gRPC channel, see
    ``GrpcPredictorClient._attempt``; a new REST connection, see ``RestPredictorClient``).
    Never after a timeout or an answer. Each attempt gets what is left of ``timeout_s``, so the
    whole stays within it. Only for idempotent calls (inference, metadata)."""
    started = time.monotonic()
    for attempt in range(retries + 1):
        try:
            return await call(timeout_s - (time.monotonic() - started), attempt > 0)
        except DependencyUnavailableError:
            pause = RETRY_BACKOFF_S * 2**attempt
            left = timeout_s - (time.monotonic() - started) - pause
            if attempt == retries or left < RETRY_MIN_S:
                raise
            metrics.PREDICTOR_RETRIES.inc()
            await asyncio.sleep(pause)
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class Prediction:
    scores: np.ndarray
    model_version: str


class PredictorClient(Protocol):
    protocol: str

    async def metadata(self) -> dict[str, Any]: ...

    async def infer(self, features: np.ndarray, request_id: str) -> Prediction: ...

    async def close(self) -> None: ...


class PredictorError(BerthError):
    """The predictor failed in a way that has no client-side meaning (500, no details)."""


def from_grpc_error(exc: grpc.aio.AioRpcError) -> BerthError:
    code, details = exc.code(), exc.details() or ""
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        return InvalidInputError(f"predictor rejected the input: {details}")
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        return OverloadedError(f"predictor overloaded: {details}")
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return DeadlineExceededError(PREDICTOR)
    # CANCELLED reaches a client only from the server's side (a predictor stopping past its
    # grace cancels what it still holds): like UNAVAILABLE, the call was never answered.
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.NOT_FOUND, grpc.StatusCode.CANCELLED):
        return DependencyUnavailableError(PREDICTOR, f"{code.name}: {details}")
    return PredictorError(f"predictor answered {code.name}: {details}")


def from_http_error(status: int, body: bytes, headers: Mapping[str, str]) -> BerthError:
    """The predictor's HTTP error as the transformer answers it (``headers``: names
    lower-case)."""
    try:
        payload = orjson.loads(body)
        message = str(payload.get("error") or payload.get("detail") or payload)
    except (orjson.JSONDecodeError, AttributeError):
        message = body[:200].decode(errors="replace")
    if status in (400, 422):
        return InvalidInputError(f"predictor rejected the input: {message}")
    if status == 429:
        retry_after = headers.get("retry-after", "1")
        return OverloadedError(
            f"predictor overloaded: {message}",
            retry_after_s=int(retry_after) if retry_after.isdigit() else 1,
        )
    if status == 504:
        return DeadlineExceededError(PREDICTOR)
    if status in (404, 502, 503):
        return DependencyUnavailableError(PREDICTOR, f"HTTP {status}: {message}")
    return PredictorError(f"predictor answered HTTP {status}: {message}")


class Timed:
    """Observes the call latency by outcome (the HTTP status the caller will see)."""

    def __init__(self, protocol: str) -> None:
        self.protocol = protocol

    def __enter__(self) -> Timed:
        self.started = time.perf_counter()
        return self

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        outcome = "200" if exc is None else str(getattr(exc, "status", 500))
        metrics.PREDICTOR_CALL_SECONDS.labels(self.protocol, outcome).observe(
            time.perf_counter() - self.started
        )


def checked_scores(scores: np.ndarray, n: int) -> np.ndarray:
    if scores.shape != (n,):
        raise PredictorError(f"predictor returned {scores.shape} scores for {n} rows")
    return scores.astype(np.float32, copy=False)
