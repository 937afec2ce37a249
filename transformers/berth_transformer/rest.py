"""The transformer's own V2 REST routes, registered before KServe's (the first match wins).

KServe's V2 endpoints answer through a pydantic response model that writes absent fields as
``null`` (``"parameters": null`` on every output, ``"versions": null`` in the metadata), which
the Open Inference Protocol's schema does not allow: these answer with what is set only.

- ``POST /v2/models/{name}/infer``: JSON validated by KServe's own request model (a bad field
  is a 400 naming it), or the binary tensor extension; the answer is KServe's
  ``InferResponse.to_rest()`` as is, binary outputs when asked for.
- ``GET /v2/models/{name}`` (and ``/versions/{v}`` of the version it serves): the request
  tensors, the output, the primary model's version; ``/versions/{v}/ready`` likewise.

Versioned inference stays KServe's (501): with a canary, the version that answers is the
router's choice, not the client's.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from kserve.errors import InvalidInput
from kserve.protocol.infer_type import InferRequest
from kserve.protocol.rest.v2_datamodels import InferenceRequest
from pydantic import ValidationError

from berth.errors import InvalidInputError
from berth.serving.rest import HEADER_LENGTH, check_model, ready_response, v2_response


def decode(raw: bytes, header_length: str | None, model_name: str) -> InferRequest:
    """A V2 REST body (JSON, or JSON + binary tensors) as KServe's ``InferRequest``."""
    if header_length is None:
        try:
            return InferRequest.from_inference_request(
                InferenceRequest.model_validate_json(raw), model_name
            )
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            where = ".".join(str(p) for p in first["loc"]) or "body"
            message = f"malformed request {where}: {first['msg']}"
            raise InvalidInputError(message, field=where) from None
    try:
        length = int(header_length)
        if not 0 < length <= len(raw):
            raise ValueError(length)
    except ValueError:
        raise InvalidInputError(
            f"{HEADER_LENGTH} header {header_length!r} is not a JSON length within the "
            f"{len(raw)}-byte body",
            field=HEADER_LENGTH,
        ) from None
    try:
        return InferRequest.from_bytes(raw, length, model_name)
    except InvalidInput as exc:
        raise InvalidInputError(f"malformed request body: {exc}", field="body") from None
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        what = f"missing {exc}" if isinstance(exc, KeyError) else str(exc)
        raise InvalidInputError(f"malformed request body: {what}", field="body") from None


def install_routes(app: FastAPI, model: Any) -> None:
    """``model``: the loaded ``FeatureTransformer``."""

    def check(name: str, version: str | None = None) -> None:
        check_model(name, version, serves=model.name, version_served=model.model_version)

    async def infer(model_name: str, request: Request) -> Response:
        check(model_name)
        body = decode(await request.body(), request.headers.get(HEADER_LENGTH), model.name)
        response, headers = await model(body, headers=dict(request.headers))
        return v2_response(response, headers)

    async def model_metadata(model_name: str) -> JSONResponse:
        check(model_name)
        return JSONResponse(model.v2_metadata())

    async def model_metadata_version(model_name: str, model_version: str) -> JSONResponse:
        check(model_name, model_version)
        return JSONResponse(model.v2_metadata())

    async def model_ready_version(model_name: str, model_version: str) -> JSONResponse:
        check(model_name, model_version)
        return ready_response({"name": model.name, "ready": bool(model.ready)})

    app.add_api_route("/v2/models/{model_name}/infer", infer, methods=["POST"])
    app.add_api_route(
        "/v2/models/{model_name}/versions/{model_version}/ready",
        model_ready_version,
        methods=["GET"],
    )
    app.add_api_route("/v2/models/{model_name}", model_metadata, methods=["GET"])
    app.add_api_route(
        "/v2/models/{model_name}/versions/{model_version}", model_metadata_version, methods=["GET"]
    )
