"""The predictor's REST adapter: the routes both containers share over their data plane
(:func:`berth.serving.rest.plane_routes`: inference ahead of KServe's FastAPI app, metadata and
readiness on it), and ``x-model-version`` on every HTTP answer, errors and refusals included
(:class:`VersionHeader`, outermost)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from berth.serving.infer_routes import Front
from berth.serving.rest import plane_routes
from berth.wire import MODEL_VERSION_HEADER
from berth_predictor.data_plane import PredictorDataPlane


class VersionHeader:
    """Pure ASGI middleware: ``x-model-version`` on every HTTP response."""

    def __init__(self, app: Any, plane: PredictorDataPlane) -> None:
        self.app = app
        self.plane = plane

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        header = (MODEL_VERSION_HEADER.encode(), self.plane.version.encode())

        async def send_with_version(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", []) if h[0] != header[0]]
                message = {**message, "headers": [*headers, header]}
            await send(message)

        await self.app(scope, receive, send_with_version)


def install_routes(app: FastAPI, plane: PredictorDataPlane) -> Front:
    """The shared routes (:func:`berth.serving.rest.plane_routes`), every answer versioned."""
    return Front(plane_routes(app, plane), outer=lambda inner: VersionHeader(inner, plane))
