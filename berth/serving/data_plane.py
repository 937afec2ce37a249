"""``DataPlane``: what a container serves, behind both transports.

Each container implements it once (the predictor: ``berth_predictor.data_plane``); its REST
routes and its gRPC servicer are thin adapters that receive it, so the model name and version
are checked in one place and both transports share metrics and errors. After MLServer's
``mlserver/handlers/dataplane.py`` (the data plane) and ``mlserver/grpc/servicers.py`` (an
adapter that converts and delegates).

Every method raises a :class:`~berth.errors.BerthError` (or a
:class:`~berth.serving.errors.WireError` carrying one) to refuse; the adapters' error mapping
(:mod:`berth.serving.errors`) answers it in its transport.
"""

from __future__ import annotations

from typing import Any, Protocol


class DataPlane(Protocol):
    @property
    def name(self) -> str:
        """The model this container serves."""

    def resolve(self, name: str, version: str | None = None) -> object:
        """What serves ``name`` at ``version`` (None: any), container-specific (the predictor:
        None; the transformer: the rollout target); ``ModelNotFoundError`` for another model or
        a version not served."""

    def ready(self) -> bool:
        """Server readiness: loaded, warm, and not draining."""

    def model_ready(self, name: str, version: str | None = None) -> bool:
        """``name`` (at ``version``) resolved, and ready."""

    def metadata(self, name: str, version: str | None = None) -> dict[str, Any]:
        """The OIP V2 model metadata object (the same over REST and gRPC)."""

    async def infer(
        self, name: str, version: str | None, body: Any, headers: dict[str, str]
    ) -> tuple[Any, dict[str, str]]:
        """Resolve, decode ``body`` (the transport's request) and answer: the response (a V1
        dict or an ``InferResponse``) and the response headers."""
