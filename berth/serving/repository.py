"""KServe's model-repository extension (``/v2/repository/...``, gRPC ``Repository*``): closed
unless ``BERTH_<ROLE>_MODEL_REPOSITORY`` is true, and then it cannot leave a container
half-serving.

KServe 0.21 serves the extension unauthenticated and on by default; its ``unload`` drops the
model from the registry while Berth's own routes and readiness go on as if nothing happened,
and its ``load`` cannot bring the model back (``ModelRepository.load`` is a no-op). Here:

- off (the default): index, load and unload answer 404 / gRPC UNIMPLEMENTED naming the setting;
- on: ``unload`` takes the model out of service -- readiness (REST, gRPC ``ServerReady`` and
  ``grpc.health.v1``) turns false and every inference route answers 404 or 503 -- and ``load``
  puts the same loaded model back (the artifact is not re-read; a new artifact is a new pod).
"""

from __future__ import annotations

from typing import Any

import grpc
from kserve.model_repository import ModelRepository
from kserve.protocol.model_repository_extension import ModelRepositoryExtension

from berth.errors import BerthError
from berth.observability import get_logger
from berth.serving.errors import WireError

log = get_logger(__name__)


class RepositoryClosedError(BerthError):
    status = 404
    grpc_code = grpc.StatusCode.UNIMPLEMENTED

    @property
    def client_message(self) -> str:
        return self.message


class ClosedRepositoryExtension(ModelRepositoryExtension):  # type: ignore[misc]
    """Every call of the extension refused, naming the setting that opens it."""

    def __init__(self, registry: ModelRepository, setting: str) -> None:
        super().__init__(model_registry=registry)
        self.setting = setting

    def _closed(self) -> WireError:
        """A :class:`WireError`: the REST handler and KServe's gRPC interceptor both map it."""
        return WireError(
            RepositoryClosedError(
                f"the model-repository extension is off (set {self.setting}=true to turn it on)"
            )
        )

    async def index(self, filter_ready: bool | None = False) -> list[dict[str, str]]:
        raise self._closed()

    async def load(self, model_name: str) -> None:
        raise self._closed()

    async def unload(self, model_name: str) -> None:
        raise self._closed()


class OpenRepositoryExtension(ModelRepositoryExtension):  # type: ignore[misc]
    """KServe's extension, answering what KServe's gRPC servicer reads: its
    ``RepositoryModelLoad``/``Unload`` index the extension's return value, which KServe's own
    extension never gives (None: INTERNAL after the action was done)."""

    async def load(self, model_name: str) -> dict[str, Any]:
        await super().load(model_name)
        return {"name": model_name, "load": True}

    async def unload(self, model_name: str) -> dict[str, Any]:
        await super().unload(model_name)
        return {"name": model_name, "unload": True}


class ServiceRepository(ModelRepository):  # type: ignore[misc]
    """The one model of a container; ``unload`` takes it out of service, ``load`` back in."""

    def __init__(self) -> None:
        super().__init__()
        self.unloaded: dict[str, Any] = {}

    def unload(self, name: str) -> None:
        model = self.models.pop(name)  # KeyError: KServe answers 404
        model.ready = False
        self.unloaded[name] = model
        log.warning("model unloaded through the repository extension", model=name)

    def load(self, name: str) -> bool:
        model = self.unloaded.pop(name, None)
        if model is None:
            return name in self.models  # already in service; anything else is not ready
        model.ready = True
        self.update(model, name)
        log.warning("model loaded through the repository extension", model=name)
        return True


def repository_extension(
    registry: ModelRepository, enabled: bool, setting: str
) -> ModelRepositoryExtension:
    if enabled:
        return OpenRepositoryExtension(model_registry=registry)
    return ClosedRepositoryExtension(registry, setting)
