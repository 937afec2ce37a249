"""REST pieces both containers' own routes share: which model a path names, and V2 answers
(JSON, or the binary tensor extension when the request asked for binary outputs)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from kserve.protocol.infer_type import InferResponse

from berth.errors import ModelNotFoundError, quote

JSON = "application/json"
HEADER_LENGTH = "inference-header-content-length"  # binary extension: the JSON part's length


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


Infer = Callable[[str, str | None, Request], Awaitable[Response]]
Describe = Callable[[str, str | None], Awaitable[JSONResponse]]


def add_v2_routes(app: FastAPI, *, infer: Infer, metadata: Describe, ready: Describe) -> None:
    """The OIP V2 model routes, unversioned and ``/versions/{v}``, on handlers that take the
    model name and the version asked for (None when the path names none)."""

    async def infer_v2(model_name: str, request: Request) -> Response:
        return await infer(model_name, None, request)

    async def infer_version(model_name: str, model_version: str, request: Request) -> Response:
        return await infer(model_name, model_version, request)

    async def metadata_v2(model_name: str) -> JSONResponse:
        return await metadata(model_name, None)

    async def metadata_version(model_name: str, model_version: str) -> JSONResponse:
        return await metadata(model_name, model_version)

    async def ready_version(model_name: str, model_version: str) -> JSONResponse:
        return await ready(model_name, model_version)

    model, versioned = "/v2/models/{model_name}", "/v2/models/{model_name}/versions/{model_version}"
    app.add_api_route(f"{model}/infer", infer_v2, methods=["POST"])
    app.add_api_route(f"{versioned}/infer", infer_version, methods=["POST"])
    app.add_api_route(model, metadata_v2, methods=["GET"])
    app.add_api_route(versioned, metadata_version, methods=["GET"])
    app.add_api_route(f"{versioned}/ready", ready_version, methods=["GET"])
