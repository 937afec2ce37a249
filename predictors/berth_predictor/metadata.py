"""V2 model metadata from the artifact: the contract the transformer checks at start.

REST and gRPC answer the same content. The OIP ``properties`` map (string -> string) carries
the FeatureService, the model version and the ordered feature names and dtypes
(:class:`berth.wire.ModelProperties`); over gRPC it travels as the OIP's field 6, which
KServe's proto lacks (:func:`berth.serving.kserve_compat.properties_wire`).
"""

from __future__ import annotations

from typing import Any

from berth.artifact import ArtifactMetadata
from berth.wire import ModelProperties

PLATFORM = "onnxruntime_onnx"


def properties(meta: ArtifactMetadata) -> dict[str, str]:
    return ModelProperties.of(meta).to_properties()


def model_metadata(name: str, meta: ArtifactMetadata) -> dict[str, Any]:
    """The V2 model metadata object, ``properties`` included."""
    return {
        "name": name,
        "versions": [meta.version],
        "platform": PLATFORM,
        "inputs": [t.model_dump() for t in meta.inputs],
        "outputs": [t.model_dump() for t in meta.outputs],
        "properties": properties(meta),
    }
