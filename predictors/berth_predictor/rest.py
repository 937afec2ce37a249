"""The predictor's REST adapter: Berth's routes on KServe's FastAPI app, registered before KServe
adds its own (the first matching route wins), so these answer and KServe's stay as the fallback.
Each route hands the data plane (:mod:`berth_predictor.data_plane`) what it was asked.

- Inference (V1 ``:predict``, V2 ``/infer`` with or without ``/versions/<v>``): the raw body
  goes to the model, which decodes it (:mod:`berth.serving.codec`) — bad JSON or a bad binary
  tensor is a 400 naming the field, never KServe's pydantic 422 or a 500, and JSON skips
  pydantic.
- Model metadata with the OIP ``properties`` map (KServe's response model drops it), and
  ``versions``; a version other than the artifact's is a 404 (KServe: 501 for any version).
- Readiness (``/v2/health/ready``, per model) is false until the warm-up finished; KServe's
  server readiness is true as soon as the process listens.
- Every HTTP answer, errors included, carries ``x-model-version`` (:class:`VersionHeader`).
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from berth.serving.codec import RestBody
from berth.serving.rest import HEADER_LENGTH, JSON, add_v2_routes, ready_response, v2_response
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


def install_routes(app: FastAPI, plane: PredictorDataPlane) -> None:
    app.add_middleware(VersionHeader, plane=plane)

    async def predict_v1(model_name: str, request: Request) -> Response:
        body = RestBody("v1", await request.body())
        response, headers = await plane.infer(model_name, None, body, dict(request.headers))
        return Response(orjson.dumps(response), media_type=JSON, headers=headers)

    async def infer(model_name: str, version: str | None, request: Request) -> Response:
        body = RestBody("v2", await request.body(), request.headers.get(HEADER_LENGTH))
        response, headers = await plane.infer(model_name, version, body, dict(request.headers))
        return v2_response(response, headers)

    async def metadata(model_name: str, version: str | None) -> JSONResponse:
        return JSONResponse(plane.metadata(model_name, version))

    async def model_ready(model_name: str, version: str | None) -> JSONResponse:
        return ready_response({"name": plane.name, "ready": plane.model_ready(model_name, version)})

    async def server_ready() -> JSONResponse:
        return ready_response({"ready": plane.ready()})

    app.add_api_route("/v1/models/{model_name}:predict", predict_v1, methods=["POST"])
    add_v2_routes(app, infer=infer, metadata=metadata, ready=model_ready)
    app.add_api_route("/v2/health/ready", server_ready, methods=["GET"])
