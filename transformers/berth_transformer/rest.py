"""The transformer's own V2 REST routes, registered before KServe's (the first match wins): a
thin adapter over the :class:`~berth_transformer.data_plane.TransformerPlane`.

KServe's V2 endpoints answer through a pydantic response model that writes absent fields as
``null`` (``"parameters": null`` on every output, ``"versions": null`` in the metadata), which
the Open Inference Protocol's schema does not allow: these answer with what is set only.

- ``POST /v2/models/{name}/infer``: the raw body goes to the data plane as a
  :class:`~berth.serving.codec.RestBody`; the model decodes it (JSON or the binary tensor
  extension, a structural fault a 400 naming it, counted in its request metrics), as the
  predictor does; the answer is KServe's ``InferResponse.to_rest()`` as is, binary outputs
  when asked.
- ``/versions/{v}/infer`` (the path the OIP describes) answers from version ``v``: the
  primary's or, during a canary, the canary's, whatever the customer's bucket; another
  version is a 404 naming those served (KServe: 501 for any version).
- ``GET /v2/models/{name}`` (and ``/versions/{v}``, ``/versions/{v}/ready``): the request
  tensors, the output, the versions served.
"""

from __future__ import annotations

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from berth.serving.codec import RestBody
from berth.serving.rest import add_v2_routes, ready_response, v2_response
from berth.wire import HEADER_LENGTH
from berth_transformer.data_plane import TransformerPlane


def install_routes(app: FastAPI, plane: TransformerPlane) -> None:
    async def infer(model_name: str, version: str | None, request: Request) -> Response:
        plane.in_service(model_name, version)  # before the body is read
        body = RestBody("v2", await request.body(), request.headers.get(HEADER_LENGTH))
        response, headers = await plane.infer(model_name, version, body, dict(request.headers))
        return v2_response(response, headers)

    async def metadata(model_name: str, version: str | None) -> JSONResponse:
        return JSONResponse(plane.metadata(model_name, version))

    async def ready(model_name: str, version: str | None) -> JSONResponse:
        return ready_response({"name": plane.name, "ready": plane.model_ready(model_name, version)})

    async def server_ready() -> JSONResponse:
        return ready_response({"ready": plane.ready()})

    add_v2_routes(app, infer=infer, metadata=metadata, ready=ready)
    app.add_api_route("/v2/health/ready", server_ready, methods=["GET"])
