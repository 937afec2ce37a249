"""The wire contract between clients, the transformer and the predictor, declared once.

- Tensor names: the artifact's input :data:`INPUT_NAME` (rows x features, FP32) and output
  :data:`OUTPUT_NAME` (one FP32 score per row); the transformer answers with the same output.
- Headers every answer carries: :data:`MODEL_VERSION_HEADER`, :data:`REQUEST_ID_HEADER`; the
  transformer adds :data:`FILLED_HEADER` and :data:`UNKNOWN_HEADER`; the OIP binary tensor
  extension's :data:`HEADER_LENGTH`.
- The OIP model-metadata ``properties`` map (string -> string), which the predictor writes and
  the transformer checks its FeatureService against: :class:`ModelProperties`
  (``ModelProperties.of(artifact).to_properties()`` to write,
  ``ModelProperties.from_metadata(metadata)`` to read a REST or gRPC metadata answer).

Nothing here imports a serving library: the build, the batch scorer and clients use it too.
"""

from __future__ import annotations

from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict

from berth.errors import ContractMismatchError
from berth.observability import REQUEST_ID_HEADER

INPUT_NAME = "features"
OUTPUT_NAME = "score"

MODEL_VERSION_HEADER = "x-model-version"
FILLED_HEADER = "x-berth-filled-values"  # values filled from the artifact's defaults
UNKNOWN_HEADER = "x-berth-unknown-entities"  # entities with no stored value ("k=v;k=v")
HEADER_LENGTH = "inference-header-content-length"  # binary extension: the JSON part's length
PROPERTY_KEYS = ("feature_service", "model_version", "features", "feature_dtypes")

__all__ = [
    "FILLED_HEADER",
    "HEADER_LENGTH",
    "INPUT_NAME",
    "MODEL_VERSION_HEADER",
    "OUTPUT_NAME",
    "PROPERTY_KEYS",
    "REQUEST_ID_HEADER",
    "UNKNOWN_HEADER",
    "ModelProperties",
]


class _Feature(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def dtype(self) -> str: ...


class _Artifact(Protocol):
    """What :meth:`ModelProperties.of` reads (``berth.artifact.ArtifactMetadata``)."""

    @property
    def feature_service(self) -> str: ...

    @property
    def version(self) -> str: ...

    @property
    def features(self) -> list[Any]: ...


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


class ModelProperties(BaseModel):
    """The OIP ``properties`` keys: FeatureService, model version, ordered features, dtypes."""

    model_config = ConfigDict(frozen=True, protected_namespaces=())

    feature_service: str
    model_version: str
    features: list[str]
    feature_dtypes: list[str]

    @classmethod
    def of(cls, artifact: _Artifact) -> ModelProperties:
        features: list[_Feature] = list(artifact.features)
        return cls(
            feature_service=artifact.feature_service,
            model_version=artifact.version,
            features=[f.name for f in features],
            feature_dtypes=[f.dtype for f in features],
        )

    def to_properties(self) -> dict[str, str]:
        """The map as it travels (lists joined by commas)."""
        return {
            "feature_service": self.feature_service,
            "model_version": self.model_version,
            "features": ",".join(self.features),
            "feature_dtypes": ",".join(self.feature_dtypes),
        }

    @classmethod
    def from_metadata(cls, metadata: dict[str, Any]) -> ModelProperties:
        """The keys from a V2 model-metadata answer: its ``properties`` map (REST; older
        servers: ``parameters``), or the same keys as gRPC trailing metadata
        (``metadata["trailing_metadata"]``). A model version missing from the map is the
        first of ``versions``. A missing key is a :class:`ContractMismatchError`."""
        props = metadata.get("properties") or metadata.get("parameters") or {}
        if not all(key in props for key in PROPERTY_KEYS):
            props = {**props, **(metadata.get("trailing_metadata") or {})}
        missing = [key for key in PROPERTY_KEYS if key not in props]
        if missing:
            raise ContractMismatchError(
                f"the predictor's model metadata lacks {missing}: cannot check the contract"
            )
        versions = metadata.get("versions") or []
        return cls(
            feature_service=str(props["feature_service"]),
            model_version=str(props.get("model_version") or (versions[0] if versions else "")),
            features=_split(str(props["features"])),
            feature_dtypes=_split(str(props["feature_dtypes"])),
        )
