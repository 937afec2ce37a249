"""The transformer's own V2 REST routes, registered before KServe's (the first match wins).

KServe's V2 endpoints answer through a pydantic response model that writes absent fields as
``null`` (``"parameters": null`` on every output, ``"versions": null`` in the metadata), which
the Open Inference Protocol's schema does not allow: these answer with what is set only.

- ``POST /v2/models/{name}/infer``: the body decoded by :func:`berth.serving.codec.decode_v2`
  (JSON or the binary tensor extension, a structural fault a 400 naming it), as the predictor
  does; the answer is KServe's ``InferResponse.to_rest()`` as is, binary outputs when asked.
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

from berth.errors import ModelNotFoundError
from berth.serving.codec import decode_v2
from berth.serving.rest import (
    HEADER_LENGTH,
    add_v2_routes,
    check_model,
    ready_response,
    v2_response,
)
from berth_transformer import routing


def install_routes(app: FastAPI, model: Any) -> None:
    """``model``: the loaded ``FeatureTransformer``."""

    def target(name: str, version: str | None) -> str | None:
        """404 for another model; the target serving ``version`` (None: the router picks)."""
        check_model(name, serves=model.name)
        return None if not version else model.router.target_of(name, version)

    def in_service(name: str, version: str | None) -> str | None:
        """:func:`target`, and 404 while the model is unloaded (repository extension)."""
        pin = target(name, version)
        if not model.ready:
            raise ModelNotFoundError(f"model {name!r} is not loaded")
        return pin

    async def infer(model_name: str, version: str | None, request: Request) -> Response:
        pin = in_service(model_name, version)
        body = decode_v2(await request.body(), request.headers.get(HEADER_LENGTH), model.name)
        with routing.pinned(pin):
            response, headers = await model(body, headers=dict(request.headers))
        return v2_response(response, headers)

    async def metadata(model_name: str, version: str | None) -> JSONResponse:
        in_service(model_name, version)
        return JSONResponse(model.v2_metadata())

    async def ready(model_name: str, version: str | None) -> JSONResponse:
        target(model_name, version)
        return ready_response({"name": model.name, "ready": bool(model.ready)})

    async def server_ready() -> JSONResponse:
        return ready_response({"ready": bool(model.ready)})

    add_v2_routes(app, infer=infer, metadata=metadata, ready=ready)
    app.add_api_route("/v2/health/ready", server_ready, methods=["GET"])
