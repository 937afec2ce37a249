"""The transformer's REST adapter over the :class:`~berth_transformer.data_plane.TransformerPlane`:
inference (KServe V1 ``:predict`` and V2) answered ahead of KServe's FastAPI app
(:mod:`berth.serving.infer_routes`), metadata and readiness registered on it before KServe's
own (the first match wins).

KServe's V2 endpoints answer through a pydantic response model that writes absent fields as
``null`` (``"parameters": null`` on every output, ``"versions": null`` in the metadata), which
the Open Inference Protocol's schema does not allow: these answer with what is set only.

- ``POST /v1/models/{name}:predict``: ``{"instances": [...]}`` decoded by the model as V2
  bodies are; another model, or the model unloaded, is a 404.
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

from fastapi import FastAPI

from berth.serving.infer_routes import Front
from berth.serving.rest import plane_routes
from berth_transformer.data_plane import TransformerPlane


def install_routes(app: FastAPI, plane: TransformerPlane) -> Front:
    """The shared routes (:func:`berth.serving.rest.plane_routes`) over the transformer's plane."""
    return Front(plane_routes(app, plane))
