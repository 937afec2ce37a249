"""The REST adapter both containers share over their :class:`~berth.serving.data_plane.DataPlane`:
inference answered ahead of KServe's FastAPI app (:mod:`berth.serving.infer_routes`), metadata
and readiness registered on it before KServe adds its own (the first matching route wins).

- ``POST /v1/models/{name}:predict`` and V2 ``/infer`` (with or without ``/versions/{v}``): the
  raw body goes to the data plane as a :class:`~berth.serving.codec.RestBody`, which the model
  decodes inside its call (bad JSON or a bad binary tensor is a 400 naming the field, counted in
  its metrics, never KServe's pydantic 422 or a 500); a V2 answer is JSON with ``parameters``
  only where set (KServe's pydantic response model writes ``null``, which the OIP schema does
  not allow), or the binary tensor extension when the request asked for binary outputs.
- ``GET /v2/models/{name}`` (and ``/versions/{v}``): the plane's OIP metadata; ``.../ready`` and
  ``/v2/health/ready``: 503 until ready (KServe's server readiness is true as soon as the
  process listens).
- Another model or version is a 404 naming what is served (KServe: 501 for any version).
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse
from kserve.protocol.infer_type import InferResponse

from berth.errors import ModelNotFoundError, quote
from berth.serving.codec import RestBody
from berth.serving.data_plane import DataPlane
from berth.serving.infer_routes import Call, Route
from berth.wire import HEADER_LENGTH

JSON = "application/json"


def check_model(
    name: str, version: str | None = None, *, serves: str, version_served: str | None = None
) -> None:
    """404 for another model name, or (given ``version_served``) another version."""
    if name != serves:
        raise ModelNotFoundError(f"model {quote(name)} not found; this server has {serves!r}")
    if version and version_served is not None and version != version_served:
        raise ModelNotFoundError(
            f"model {quote(name)} has no version {quote(version)}; it serves {version_served!r}"
        )


def v2_response(response: InferResponse, headers: dict[str, str]) -> Response:
    """The OIP V2 answer: ``parameters`` only where set (never ``null``)."""
    payload, json_length = response.to_rest()
    if json_length is None:
        return Response(orjson.dumps(payload), media_type=JSON, headers=headers)
    return Response(
        payload,
        media_type="application/octet-stream",
        headers={**headers, HEADER_LENGTH: str(json_length)},
    )


def ready_response(content: dict[str, Any]) -> JSONResponse:
    return JSONResponse(content, status_code=200 if content["ready"] else 503)


MODEL = "/v2/models/{model_name}"
VERSIONED = "/v2/models/{model_name}/versions/{model_version}"


def plane_routes(app: FastAPI, plane: DataPlane) -> list[Route]:
    """Register ``plane``'s metadata and readiness routes on ``app``; its inference routes,
    for :class:`~berth.serving.infer_routes.Front`."""

    async def predict_v1(call: Call) -> Response:
        body = RestBody("v1", call.body)
        response, headers = await plane.infer(call.params["model_name"], None, body, call.headers)
        return Response(orjson.dumps(response), media_type=JSON, headers=headers)

    async def infer(call: Call) -> Response:
        body = RestBody("v2", call.body, call.headers.get(HEADER_LENGTH))
        name, version = call.params["model_name"], call.params.get("model_version")
        response, headers = await plane.infer(name, version, body, call.headers)
        return v2_response(response, headers)

    async def metadata(model_name: str) -> JSONResponse:
        return JSONResponse(plane.metadata(model_name))

    async def version_metadata(model_name: str, model_version: str) -> JSONResponse:
        return JSONResponse(plane.metadata(model_name, model_version))

    async def model_ready(model_name: str, model_version: str) -> JSONResponse:
        ready = plane.model_ready(model_name, model_version)
        return ready_response({"name": plane.name, "ready": ready})

    async def server_ready() -> JSONResponse:
        return ready_response({"ready": plane.ready()})

    app.add_api_route(MODEL, metadata, methods=["GET"])
    app.add_api_route(VERSIONED, version_metadata, methods=["GET"])
    app.add_api_route(f"{VERSIONED}/ready", model_ready, methods=["GET"])
    app.add_api_route("/v2/health/ready", server_ready, methods=["GET"])
    return [
        Route("/v1/models/{model_name}:predict", predict_v1),
        Route(f"{MODEL}/infer", infer),
        Route(f"{VERSIONED}/infer", infer),
    ]
