"""Calls to the predictor over Open Inference V2: gRPC (one ``grpc.aio`` channel) or REST (one
shared ``aiohttp`` session), each with a timeout and one error mapping.

The predictor's errors keep their meaning: its 400 / INVALID_ARGUMENT is a 400 with its
message, 429 / RESOURCE_EXHAUSTED a 429, unreachable a 503 ("predictor unavailable"), a
timeout a 504. KServe's own transformer client is not used: it turns every HTTP error into a
500 and its REST retry setting does nothing in 0.21.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import aiohttp
import grpc
import numpy as np
import orjson
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.grpc.grpc_predict_v2_pb2_grpc import GRPCInferenceServiceStub

from berth.errors import (
    BerthError,
    DeadlineExceededError,
    DependencyUnavailableError,
    InvalidInputError,
    OverloadedError,
)
from berth.observability import outgoing_headers
from berth_transformer import metrics

T = TypeVar("T")
RETRY_MIN_S = 0.01  # a retry with less time left than this is not worth sending
PREDICTOR = "predictor"
INPUT_NAME = "features"
OUTPUT_NAME = "score"
_GRPC_OPTIONS = [
    ("grpc.max_send_message_length", 64 << 20),
    ("grpc.max_receive_message_length", 64 << 20),
    # Reconnect quickly after the predictor restarts (gRPC's default backoff grows to 120 s).
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 2000),
    # Each channel its own connections (gRPC shares them across equal channels by default):
    # a channel opened to retry after UNAVAILABLE must be a fresh connection.
    ("grpc.use_local_subchannel_pool", 1),
]


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


async def with_retries(call: Callable[[float], Awaitable[T]], retries: int, timeout_s: float) -> T:
    """``call(seconds_left)``, again up to ``retries`` times (backoff 50 ms, doubling) while it
    fails before the predictor answered it (:class:`DependencyUnavailableError`: UNAVAILABLE
    -- a gRPC retry goes over a fresh channel, see ``GrpcPredictorClient._attempt`` -- a
    refused or reset connection, 502/503). Never after a timeout or an answer. Each attempt
    gets what is left of ``timeout_s``, so the whole stays within it. Only for idempotent calls
    (inference, metadata)."""
    started = time.monotonic()
    for attempt in range(retries + 1):
        try:
            return await call(timeout_s - (time.monotonic() - started))
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


def _from_grpc_error(exc: grpc.aio.AioRpcError) -> BerthError:
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


def _from_http_error(status: int, body: bytes, headers: Any) -> BerthError:
    try:
        payload = orjson.loads(body)
        message = str(payload.get("error") or payload.get("detail") or payload)
    except (orjson.JSONDecodeError, AttributeError):
        message = body[:200].decode(errors="replace")
    if status in (400, 422):
        return InvalidInputError(f"predictor rejected the input: {message}")
    if status == 429:
        retry_after = headers.get("Retry-After", "1")
        return OverloadedError(
            f"predictor overloaded: {message}",
            retry_after_s=int(retry_after) if retry_after.isdigit() else 1,
        )
    if status == 504:
        return DeadlineExceededError(PREDICTOR)
    if status in (404, 502, 503):
        return DependencyUnavailableError(PREDICTOR, f"HTTP {status}: {message}")
    return PredictorError(f"predictor answered HTTP {status}: {message}")


class _Timed:
    """Observes the call latency by outcome (the HTTP status the caller will see)."""

    def __init__(self, protocol: str) -> None:
        self.protocol = protocol

    def __enter__(self) -> _Timed:
        self.started = time.perf_counter()
        return self

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        outcome = "200" if exc is None else str(getattr(exc, "status", 500))
        metrics.PREDICTOR_CALL_SECONDS.labels(self.protocol, outcome).observe(
            time.perf_counter() - self.started
        )


class GrpcPredictorClient:
    """Open Inference V2 over gRPC; the channel is opened in the serving loop and reused."""

    protocol = "grpc-v2"

    def __init__(self, host: str, model_name: str, link: Link) -> None:
        self.host, self.model_name, self.link = host, model_name, link
        self.timeout_s = link.timeout_s
        self._channel: grpc.aio.Channel | None = None
        self._stub: GRPCInferenceServiceStub | None = None
        self._generation = 0  # counts the channels opened: one renewal per failed channel
        self._closing: set[asyncio.Task[None]] = set()

    def _get_stub(self) -> GRPCInferenceServiceStub:
        if self._stub is None:
            if self.link.tls:
                credentials = self.link.grpc_credentials()
                self._channel = grpc.aio.secure_channel(self.host, credentials, _GRPC_OPTIONS)
            else:
                self._channel = grpc.aio.insecure_channel(self.host, options=_GRPC_OPTIONS)
            self._stub = GRPCInferenceServiceStub(self._channel)
            self._generation += 1
        return self._stub

    def _renew(self, generation: int) -> None:
        """A fresh channel (a new connection, through the Service to a live replica) for the
        next call, unless another call already replaced channel ``generation``; the old one
        closes once the calls it carries are done."""
        if generation != self._generation or self._channel is None:
            return
        old, self._channel, self._stub = self._channel, None, None
        task = asyncio.get_running_loop().create_task(old.close(grace=self.timeout_s))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _attempt(
        self, call: Callable[[GRPCInferenceServiceStub, float], Awaitable[T]], left_s: float
    ) -> T:
        """``call(stub, left_s)`` as one attempt of :func:`with_retries`: after UNAVAILABLE (a
        draining or vanished predictor) the channel is renewed, so a retry goes over a fresh
        connection (through the Service, to a live replica)."""
        stub = self._get_stub()
        generation = self._generation
        try:
            return await call(stub, left_s)
        except grpc.aio.AioRpcError as exc:
            if exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED):
                self._renew(generation)
            raise _from_grpc_error(exc) from None
        except grpc.aio.UsageError as exc:  # the channel closed under the call
            self._renew(generation)
            raise DependencyUnavailableError(PREDICTOR, f"channel closed: {exc}") from None

    async def metadata(self) -> dict[str, Any]:
        request = pb.ModelMetadataRequest(name=self.model_name)

        async def call(stub: GRPCInferenceServiceStub, left_s: float) -> tuple[Any, Any]:
            answer = stub.ModelMetadata(request, timeout=left_s)
            return await answer, await answer.trailing_metadata()

        response, trailing = await with_retries(
            lambda left_s: self._attempt(call, left_s), self.link.retries, self.timeout_s
        )

        def tensors(items: Any) -> list[dict[str, Any]]:
            return [{"name": t.name, "datatype": t.datatype, "shape": list(t.shape)} for t in items]

        return {
            "name": response.name,
            "versions": list(response.versions),
            "platform": response.platform,
            "inputs": tensors(response.inputs),
            "outputs": tensors(response.outputs),
            "trailing_metadata": {key: value for key, value in trailing or ()},
        }

    async def infer(self, features: np.ndarray, request_id: str) -> Prediction:
        # raw_input_contents: bytes, not one protobuf float per value (10x cheaper at 50x20).
        request = pb.ModelInferRequest(
            model_name=self.model_name,
            id=request_id,
            inputs=[
                pb.ModelInferRequest.InferInputTensor(
                    name=INPUT_NAME, datatype="FP32", shape=list(features.shape)
                )
            ],
            raw_input_contents=[np.ascontiguousarray(features, dtype="<f4").tobytes()],
        )
        metadata = tuple(outgoing_headers(request_id).items())

        async def call(stub: GRPCInferenceServiceStub, left_s: float) -> pb.ModelInferResponse:
            return await stub.ModelInfer(request, timeout=left_s, metadata=metadata)

        with _Timed(self.protocol):
            response = await with_retries(
                lambda left_s: self._attempt(call, left_s), self.link.retries, self.timeout_s
            )
            return Prediction(_grpc_scores(response, len(features)), response.model_version)

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
            self._channel = self._stub = None
        for task in list(self._closing):
            task.cancel()


def _grpc_scores(response: pb.ModelInferResponse, n: int) -> np.ndarray:
    for i, output in enumerate(response.outputs):
        if output.name != OUTPUT_NAME:
            continue
        if i < len(response.raw_output_contents):
            scores = np.frombuffer(response.raw_output_contents[i], dtype="<f4")
        else:
            scores = np.asarray(output.contents.fp32_contents, dtype=np.float32)
        return _checked(scores, n)
    raise PredictorError(f"predictor response has no output {OUTPUT_NAME!r}")


def _checked(scores: np.ndarray, n: int) -> np.ndarray:
    if scores.shape != (n,):
        raise PredictorError(f"predictor returned {scores.shape} scores for {n} rows")
    return scores.astype(np.float32, copy=False)


class RestPredictorClient:
    """Open Inference V2 over REST (JSON) through one shared aiohttp session."""

    protocol = "v2"

    def __init__(self, host: str, model_name: str, link: Link) -> None:
        base = host if "://" in host else f"{'https' if link.tls else 'http'}://{host}"
        self.base = f"{base.rstrip('/')}/v2/models/{model_name}"
        self.model_name, self.link, self.timeout_s = model_name, link, link.timeout_s
        self._session: aiohttp.ClientSession | None = None

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            tls = self.link.ssl_context() if self.link.tls else None
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=256, ttl_dns_cache=300, ssl=tls or True),
                json_serialize=lambda obj: orjson.dumps(obj).decode(),
            )
        return self._session

    async def _call(
        self, method: str, url: str, body: bytes | None, request_id: str | None
    ) -> dict[str, Any]:
        return await with_retries(
            lambda left_s: self._call_once(method, url, body, request_id, left_s),
            self.link.retries,
            self.timeout_s,
        )

    async def _call_once(
        self, method: str, url: str, body: bytes | None, request_id: str | None, left_s: float
    ) -> dict[str, Any]:
        headers = {"content-type": "application/json"}
        if request_id:
            headers.update(outgoing_headers(request_id))
        try:
            async with self._get_session().request(
                method,
                url,
                data=body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=left_s),
            ) as resp:
                payload = await resp.read()
                if resp.status != 200:
                    raise _from_http_error(resp.status, payload, resp.headers)
        except TimeoutError:
            raise DeadlineExceededError(PREDICTOR) from None
        except aiohttp.ClientError as exc:
            raise DependencyUnavailableError(PREDICTOR, f"{type(exc).__name__}: {exc}") from None
        try:
            result: dict[str, Any] = orjson.loads(payload)
        except orjson.JSONDecodeError:
            raise PredictorError("predictor answered with invalid JSON") from None
        return result

    async def metadata(self) -> dict[str, Any]:
        return await self._call("GET", self.base, None, None)

    async def infer(self, features: np.ndarray, request_id: str) -> Prediction:
        # float64 of each float32 value: its JSON text parses back to the same float32 exactly.
        body = orjson.dumps(
            {
                "id": request_id,
                "inputs": [
                    {
                        "name": INPUT_NAME,
                        "shape": list(features.shape),
                        "datatype": "FP32",
                        "data": features.astype(np.float64).ravel(),
                    }
                ],
            },
            option=orjson.OPT_SERIALIZE_NUMPY,
        )
        with _Timed(self.protocol):
            result = await self._call("POST", f"{self.base}/infer", body, request_id)
            for output in result.get("outputs") or ():
                if output.get("name") == OUTPUT_NAME:
                    scores = np.asarray(output.get("data"), dtype=np.float32).ravel()
                    return Prediction(
                        _checked(scores, len(features)), str(result.get("model_version") or "")
                    )
            raise PredictorError(f"predictor response has no output {OUTPUT_NAME!r}")

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def make_client(protocol: str, host: str, model_name: str, link: Link) -> PredictorClient:
    """``v2`` (REST, the default) or ``grpc-v2``; KServe V1 is not the predictor's protocol."""
    if protocol == "grpc-v2":
        return GrpcPredictorClient(host, model_name, link)
    if protocol == "v2":
        return RestPredictorClient(host, model_name, link)
    raise ValueError(f"predictor protocol {protocol!r} is not supported (use grpc-v2 or v2)")
