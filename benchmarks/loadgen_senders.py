"""The open-loop generator's senders: one request ``i`` out, its outcome back (``OK`` or an
error code), over REST (aiohttp) or gRPC V2 (grpc.aio)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from benchmarks import payloads
from benchmarks.loadgen_spec import LoadSpec
from berth.loadtest import grpc_request

OK = "ok"

Sender = Callable[[int], Awaitable[str]]


async def rest_sender(spec: LoadSpec, stack: Any) -> tuple[Sender, Callable[[], Awaitable[None]]]:
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


async def grpc_sender(spec: LoadSpec, stack: Any) -> tuple[Sender, Callable[[], Awaitable[None]]]:
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
