"""The transformer's own V2 REST routes, registered before KServe's (the first match wins).

KServe's V2 endpoints answer through a pydantic response model that writes absent fields as
``null`` (``"parameters": null`` on every output, ``"versions": null`` in the metadata), which
the Open Inference Protocol's schema does not allow: these answer with what is set only.

- ``POST /v2/models/{name}/infer``: JSON validated by KServe's own request model (a bad field
  is a 400 naming it), or the binary tensor extension; the answer is KServe's
  ``InferResponse.to_rest()`` as is, binary outputs when asked for.
- ``/versions/{v}/infer`` (the path the OIP describes) answers from version ``v``: the
  primary's or, during a canary, the canary's, whatever the customer's bucket; another
  version is a 404 naming those served (KServe: 501 for any version).
- ``GET /v2/models/{name}`` (and ``/versions/{v}``, ``/versions/{v}/ready``): the request
  tensors, the output, the versions served.
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
from berth_transformer import routing


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

    def target(name: str, version: str | None = None) -> str | None:
        """404 for another model; the target serving ``version`` (None: the router picks)."""
        check_model(name, serves=model.name)
        return None if not version else model.router.target_of(name, version)

    async def infer(model_name: str, request: Request, version: str | None = None) -> Response:
        pin = target(model_name, version)
        body = decode(await request.body(), request.headers.get(HEADER_LENGTH), model.name)
        if pin is None:
            response, headers = await model(body, headers=dict(request.headers))
        else:
            with routing.pinned(pin):
                response, headers = await model(body, headers=dict(request.headers))
        return v2_response(response, headers)

    async def infer_v2(model_name: str, request: Request) -> Response:
        return await infer(model_name, request)

    async def infer_version(model_name: str, model_version: str, request: Request) -> Response:
        return await infer(model_name, request, model_version)

    async def model_metadata(model_name: str) -> JSONResponse:
        target(model_name)
        return JSONResponse(model.v2_metadata())

    async def model_metadata_version(model_name: str, model_version: str) -> JSONResponse:
        target(model_name, model_version)
        return JSONResponse(model.v2_metadata())

    async def model_ready_version(model_name: str, model_version: str) -> JSONResponse:
        target(model_name, model_version)
        return ready_response({"name": model.name, "ready": bool(model.ready)})

    versioned = "/v2/models/{model_name}/versions/{model_version}"
    app.add_api_route("/v2/models/{model_name}/infer", infer_v2, methods=["POST"])
    app.add_api_route(f"{versioned}/infer", infer_version, methods=["POST"])
    app.add_api_route(f"{versioned}/ready", model_ready_version, methods=["GET"])
    app.add_api_route("/v2/models/{model_name}", model_metadata, methods=["GET"])
    app.add_api_route(versioned, model_metadata_version, methods=["GET"])
