"""V2 model metadata from the artifact: the contract the transformer checks at start.

REST and gRPC answer the same content. The OIP ``properties`` map (string -> string) carries
the FeatureService, the model version and the ordered feature names and dtypes. KServe 0.21's
compiled gRPC proto stops at field 5 of ``ModelMetadataResponse``, so :func:`properties_wire`
encodes field 6 (``map<string, string> properties``, as in the OIP proto) itself: merged into
KServe's message it travels as a field KServe's class does not know, which protobuf keeps and
re-serializes, and which a client compiled from the OIP proto reads as ``properties``.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message, message_factory

from berth.artifact import ArtifactMetadata

PLATFORM = "onnxruntime_onnx"
PROPERTIES_FIELD = 6  # ModelMetadataResponse.properties in the OIP gRPC proto


def properties(meta: ArtifactMetadata) -> dict[str, str]:
    return {
        "feature_service": meta.feature_service,
        "model_version": meta.version,
        "features": ",".join(f.name for f in meta.features),
        "feature_dtypes": ",".join(f.dtype for f in meta.features),
    }


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


def _properties_message() -> type[message.Message]:
    """A message with only the OIP's field 6, declared at runtime in a private pool."""
    field = descriptor_pb2.FieldDescriptorProto
    file = descriptor_pb2.FileDescriptorProto(
        name="berth_predictor/oip_properties.proto", package="berth.oip", syntax="proto3"
    )
    holder = file.message_type.add(name="ModelProperties")
    entry = holder.nested_type.add(name="PropertiesEntry")
    entry.options.map_entry = True
    entry.field.add(name="key", number=1, type=field.TYPE_STRING, label=field.LABEL_OPTIONAL)
    entry.field.add(name="value", number=2, type=field.TYPE_STRING, label=field.LABEL_OPTIONAL)
    holder.field.add(
        name="properties",
        number=PROPERTIES_FIELD,
        type=field.TYPE_MESSAGE,
        label=field.LABEL_REPEATED,
        type_name=".berth.oip.ModelProperties.PropertiesEntry",
    )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    descriptor = pool.FindMessageTypeByName("berth.oip.ModelProperties")
    holder_class: type[message.Message] = message_factory.GetMessageClass(descriptor)
    return holder_class


ModelProperties = _properties_message()


def properties_wire(props: dict[str, str]) -> bytes:
    """``props`` as field 6 of a ``ModelMetadataResponse``, for ``MergeFromString``."""
    holder: Any = ModelProperties()
    holder.properties.update(props)
    return bytes(holder.SerializeToString(deterministic=True))


def read_properties(serialized_response: bytes) -> dict[str, str]:
    """Field 6 of a serialized ``ModelMetadataResponse`` (what an OIP client sees)."""
    holder: Any = ModelProperties.FromString(serialized_response)
    return dict(holder.properties)
