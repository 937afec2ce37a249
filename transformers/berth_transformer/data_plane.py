"""The transformer's data plane: what both transports ask of the model, checked once.

The REST routes (rest.py) and the gRPC servicer (grpc_service.py) are thin adapters over one
:class:`TransformerPlane`, the transformer's :class:`berth.serving.data_plane.DataPlane` (as
MLServer's ``handlers/dataplane.py`` under its REST and gRPC servers): they translate the
transport and call it, so the model-name and version checks, readiness and inference, with
its metrics and error mapping, exist once.

- ``resolve``: 404 / NOT_FOUND for another model, or a version neither the primary nor the
  canary serves; the target serving a named version (a request that names one goes there,
  whatever its customer's bucket).
- ``metadata`` and ``infer`` also answer 404 while the model is unloaded (repository extension).
- ``infer`` passes the body as received to the model, which decodes it inside its request
  metrics (a REST body that does not decode counts as a 400 like any other refusal).
"""

from __future__ import annotations

from typing import Any

from berth.errors import ModelNotFoundError
from berth.serving.rest import check_model
from berth_transformer.model import FeatureTransformer
from berth_transformer.ranking import Body


class TransformerPlane:
    """The :class:`~berth.serving.data_plane.DataPlane` of the transformer: name and version
    resolution (to a rollout target), readiness, metadata and inference."""

    def __init__(self, model: FeatureTransformer) -> None:
        self.model = model

    @property
    def name(self) -> str:
        return str(self.model.name)

    def ready(self) -> bool:
        """Server readiness: the model is loaded and the server is not draining."""
        return bool(self.model.ready) and not self.model.guard.draining

    def resolve(self, name: str, version: str | None = None) -> str | None:
        """404 for another model or version; the target serving ``version`` (None: the router
        picks by customer)."""
        check_model(name, serves=self.model.name)
        return self.model.router.target_of(name, version) if version else None

    def in_service(self, name: str, version: str | None = None) -> str | None:
        """:meth:`resolve`, and 404 while the model is unloaded."""
        pinned = self.resolve(name, version)
        if not self.model.ready:
            raise ModelNotFoundError(f"model {name!r} is not loaded")
        return pinned

    def model_ready(self, name: str, version: str | None = None) -> bool:
        self.resolve(name, version)
        return bool(self.model.ready)

    def metadata(self, name: str, version: str | None = None) -> dict[str, Any]:
        """The OIP model metadata (the versions served, the request tensors, the output)."""
        self.in_service(name, version)
        return self.model.v2_metadata()

    async def infer(
        self, name: str, version: str | None, body: Body, headers: dict[str, str]
    ) -> tuple[Any, dict[str, str]]:
        """The model's answer and its response headers (a ``WireError`` for a failure)."""
        pinned = self.in_service(name, version)
        response, response_headers = await self.model(body, headers, pinned=pinned)
        return response, response_headers
