"""Inference answered ahead of KServe's FastAPI app: the hot path without its layers.

Every request through KServe's app walks FastAPI's and Starlette's middleware (server errors,
exception telemetry, body limit, KServe's timing middleware, the exception middleware, the
router's route matching, dependency solving and the ``Request`` object): about a fifth of
the predictor's CPU and a tenth of the transformer's at a few hundred requests per second,
before any of Berth's work. :class:`InferRoutes` answers ``POST`` to the inference paths
itself and hands everything else to the app unchanged.

- A route is a Starlette path template (``/v2/models/{model_name}/infer``) and an async
  handler taking a :class:`Call` (path parameters, the body, the headers as a
  lower-case dict) and returning a Starlette ``Response``, the same one a FastAPI route would.
- Errors are answered as the app's handlers answer them (:func:`berth.serving.errors.
  error_response`): a ``BerthError`` with its status, ``Retry-After`` and request id, KServe's
  ``InvalidInput`` as 400, anything else as a 500 without internals, logged.
- Admission, the body size limit and the drain sit outside it (:class:`berth.serving.guard.
  LimitsMiddleware`), as they did outside the app, so every refusal is unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from starlette.responses import Response
from starlette.routing import compile_path

from berth.serving.errors import error_response
from berth.serving.guard import ASGIApp, Receive, Scope, Send, read_body


@dataclass(frozen=True)
class Call:
    """One inference request as a route handler sees it."""

    params: dict[str, str]  # the path template's parameters
    body: bytes
    headers: dict[str, str]  # names lower-case (a repeated header: its last value)


Handler = Callable[[Call], Awaitable[Response]]


@dataclass(frozen=True)
class Route:
    template: str  # a Starlette path template
    handler: Handler


class InferRoutes:
    """Pure ASGI: ``POST`` to a route's path answered by its handler, the rest by ``app``."""

    def __init__(self, app: ASGIApp, routes: Sequence[Route]) -> None:
        self.app = app
        self.routes: list[tuple[re.Pattern[str], Handler]] = [
            (compile_path(route.template)[0], route.handler) for route in routes
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            path = scope["path"]
            for pattern, handler in self.routes:
                if (match := pattern.match(path)) is not None:
                    response = await self._answer(handler, match, scope, receive)
                    await response(scope, receive, send)
                    return
        await self.app(scope, receive, send)

    async def _answer(
        self, handler: Handler, match: re.Match[str], scope: Scope, receive: Receive
    ) -> Response:
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            body = await read_body(receive)  # LimitsMiddleware's, replayed: one message
            return await handler(Call(match.groupdict(), body, headers))
        except Exception as exc:
            return error_response(exc, headers)


@dataclass(frozen=True)
class Front:
    """What a container puts ahead of KServe's FastAPI app: its inference routes, and an
    outermost wrapper that sees every answer, refusals included (the predictor's
    ``x-model-version``)."""

    routes: Sequence[Route] = ()
    outer: Callable[[ASGIApp], ASGIApp] | None = None

    def app(self, app: ASGIApp, limits: Callable[[ASGIApp], ASGIApp] | None = None) -> ASGIApp:
        """``outer(limits(InferRoutes(app)))``: the ASGI app uvicorn serves."""
        served: ASGIApp = InferRoutes(app, self.routes)
        if limits is not None:
            served = limits(served)
        return self.outer(served) if self.outer is not None else served
