"""Admission, deadline and payload bounds shared by both containers.

:class:`Guard` counts requests in flight and refuses one more than ``max_inflight`` at once
(429 + ``Retry-After`` / ``RESOURCE_EXHAUSTED``) instead of queueing without limit; while the
server drains it refuses new work with 503 / ``UNAVAILABLE``. ``request()`` also bounds a
request's time (504 / ``DEADLINE_EXCEEDED``). :class:`LimitsMiddleware` applies the same
admission to REST before the body is even parsed (a rejection costs almost nothing), caps the
request body (413, declared or streamed size) and answers readiness 503 while draining.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, MutableMapping
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from typing import Any

from berth.errors import (
    BerthError,
    DeadlineExceededError,
    OverloadedError,
    PayloadTooLargeError,
    ShuttingDownError,
)
from berth.serving.errors import rest_response

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_admitted: ContextVar[bool] = ContextVar("berth_admitted", default=False)
INFER_SUFFIXES = (":predict", "/infer", ":explain")


class Guard:
    """In-flight bound, drain state and deadline of one serving process (one event loop)."""

    def __init__(
        self,
        max_inflight: int,
        deadline_s: float | None = None,
        retry_after_s: int = 1,
        setting: str = "MAX_INFLIGHT",
        on_reject: Callable[[str], None] | None = None,
    ) -> None:
        self.max_inflight = max_inflight
        self.deadline_s = deadline_s
        self.retry_after_s = retry_after_s
        self.setting = setting
        self.inflight = 0
        self.draining = False  # readiness is false
        self.accepting = True  # new work is admitted
        self.last_arrival = 0.0  # monotonic time the last request reached this process
        self._on_reject = on_reject or (lambda reason: None)
        self._idle = asyncio.Event()

    @contextmanager
    def admit(self) -> Iterator[None]:
        """Count this request in flight, or raise 503 (draining) / 429 (full). Re-entrant: a
        REST request admitted by the middleware is not counted again by the model."""
        if _admitted.get():
            yield
            return
        self.last_arrival = time.monotonic()
        if not self.accepting:
            self._on_reject("draining")
            raise ShuttingDownError()
        if self.inflight >= self.max_inflight:
            self._on_reject("overload")
            raise OverloadedError(
                f"more than {self.max_inflight} requests in flight ({self.setting})",
                retry_after_s=self.retry_after_s,
            )
        self.inflight += 1
        self._idle.clear()
        token = _admitted.set(True)
        try:
            yield
        finally:
            _admitted.reset(token)
            self.inflight -= 1
            if self.inflight == 0:
                self._idle.set()

    @asynccontextmanager
    async def request(self, stage: str = "the request") -> AsyncIterator[None]:
        """Admission plus the end-to-end deadline (``DeadlineExceededError`` naming ``stage``)."""
        with self.admit():
            if self.deadline_s is None:
                yield
                return
            try:
                async with asyncio.timeout(self.deadline_s):
                    yield
            except TimeoutError:
                raise DeadlineExceededError(stage) from None

    async def wait_idle(self, timeout_s: float) -> bool:
        """True once nothing is in flight; False if ``timeout_s`` passed first."""
        if self.inflight == 0:
            return True
        try:
            await asyncio.wait_for(self._idle.wait(), timeout_s)
        except TimeoutError:
            return False
        return True

    async def wait_quiet(self, quiet_s: float, timeout_s: float) -> bool:
        """True once no request has arrived for ``quiet_s``; False if ``timeout_s`` passed
        first. Closing a connection whose request the server has not read yet resets it, so a
        draining server closes its sockets only after its clients have stopped sending."""
        deadline = time.monotonic() + timeout_s
        while (since := time.monotonic() - self.last_arrival) < quiet_s:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            await asyncio.sleep(min(quiet_s - since, left))
        return True


def _is_readiness(path: str) -> bool:
    """V2 server/model readiness, and KServe V1's model status (``GET /v1/models/<name>``)."""
    return path.endswith("/ready") or (path.startswith("/v1/models/") and ":" not in path)


def _is_inference(method: str, path: str) -> bool:
    return method == "POST" and path.endswith(INFER_SUFFIXES)


class LimitsMiddleware:
    """Pure ASGI middleware on KServe's FastAPI app (see the module docstring)."""

    def __init__(self, app: ASGIApp, guard: Guard, max_request_bytes: int, setting: str) -> None:
        self.app = app
        self.guard = guard
        self.max_request_bytes = max_request_bytes
        self.setting = setting

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.guard.last_arrival = time.monotonic()
        path, method = scope.get("path", ""), scope.get("method", "GET")
        if self.guard.draining and method == "GET" and _is_readiness(path):
            await _json(send, 503, {"ready": False, "reason": "shutting down"})
            return
        if method not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        try:
            body = await self._read_body(scope, receive)
            if not _is_inference(method, path):
                await self.app(scope, _replay(body), send)
                return
            with self.guard.admit():
                await self.app(scope, _replay(body), send)
        except BerthError as exc:
            await _error(send, exc)

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes:
        """The whole body, refusing it (413) as soon as it is known to be too large."""
        limit = self.max_request_bytes
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                raise self._too_large(int(value))
        try:
            return await read_body(receive, limit)
        except BodyOverLimit as exc:
            raise self._too_large(exc.size, streamed=True) from None

    def _too_large(self, size: int, streamed: bool = False) -> PayloadTooLargeError:
        what = f"more than {size}" if streamed else str(size)
        return PayloadTooLargeError(
            f"request body of {what} bytes exceeds the limit of {self.max_request_bytes} bytes "
            f"({self.setting}); send fewer rows per request"
        )


class BodyOverLimit(Exception):
    def __init__(self, size: int) -> None:
        super().__init__(f"request body over {size} bytes")
        self.size = size


async def read_body(receive: Receive, limit: int | None = None) -> bytes:
    """A request's whole body from ASGI ``receive``; :class:`BodyOverLimit` as soon as what
    arrived passes ``limit`` bytes."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if limit is not None and size > limit:
            raise BodyOverLimit(size)
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # like a client that keeps the connection open
        return {"type": "http.disconnect"}  # pragma: no cover

    return receive


async def _json(
    send: Send, status: int, content: object, headers: dict[str, str] | None = None
) -> None:
    body = json.dumps(content).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


async def _error(send: Send, exc: BerthError) -> None:
    response = rest_response(exc)
    headers = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
    headers.pop("content-type", None)
    await _json(send, exc.status, {"error": exc.client_message}, headers)
