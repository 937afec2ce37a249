"""Every KServe internal Berth relies on, each behind one named accessor (kserve==0.21.0).

KServe's public surface does not reach what Berth needs (a drained shutdown, gRPC options and
TLS, the servicer's extensions, the OIP ``properties`` field), so Berth reads and sets a few of
its private attributes and module globals. They live here only; ``tests/unit/test_kserve_compat.py``
checks each one on the installed kserve and fails naming the internal an upgrade moved (run it
first when the kserve pin in ``constraints.txt`` moves).

- :func:`use_inference_servicer` / :func:`new_inference_servicer`: KServe's gRPC server builds
  its servicer from the module global ``kserve.protocol.grpc.server.InferenceServicer``.
- :func:`set_server_arg`: KServe's gRPC server reads its options from ``model_server.args``
  (its own parse of argv), not from the server's arguments.
- :func:`rest_server_of`, :func:`grpc_server_of`, :func:`set_servers`: the ``ModelServer``'s
  ``_rest_server`` / ``_grpc_server`` (KServe's ``stop`` reads the latter).
- :func:`uvicorn_of`: a ``RESTServer``'s ``uvicorn.Server`` (``_server``), for its signal
  handler, its connections and its exit flags.
- :func:`aio_server_of` / :func:`set_aio_server` / :func:`grpc_server_parts`: a ``GRPCServer``'s
  ``grpc.aio`` server and its constructor arguments (``_server``, ``_data_plane``,
  ``_model_repository_extension``, ``_kwargs``, ``_port``).
- :func:`register_models`: ``ModelServer._register_and_check_atleast_one_model_is_ready``.
- :data:`REST_HANDLERS_HOOK`: ``RESTServer._add_exception_handlers``, which Berth overrides.
- :func:`properties_wire` (:data:`OipProperties` reads it back): KServe's compiled gRPC proto
  stops at field 5 of ``ModelMetadataResponse``; field 6 (``map<string, string> properties``,
  as in the OIP proto) is declared here at run time and merged into KServe's message as a
  field its class does not know, which protobuf keeps and re-serializes, and which an OIP
  client reads.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message, message_factory
from kserve import model_server
from kserve.model_server import ModelServer
from kserve.protocol.grpc import server as kserve_grpc_server
from kserve.protocol.grpc.server import GRPCServer
from kserve.protocol.rest.server import RESTServer

# --- the gRPC servicer, by its module-global name ------------------------------------------


def use_inference_servicer(servicer: type) -> None:
    """Make KServe's gRPC server (and :func:`new_inference_servicer`) build ``servicer``."""
    kserve_grpc_server.InferenceServicer = servicer


def inference_servicer_class() -> type:
    servicer: type = kserve_grpc_server.InferenceServicer
    return servicer


def new_inference_servicer(grpc_server: GRPCServer) -> Any:
    """The servicer KServe's ``GRPCServer.start`` would build, for ``grpc_server``."""
    data_plane, extension, _, _ = grpc_server_parts(grpc_server)
    return inference_servicer_class()(data_plane, extension)


# --- model_server.args ------------------------------------------------------------------------


def server_args() -> dict[str, Any]:
    """KServe's own parse of argv, which its gRPC server reads its options from."""
    return dict(vars(model_server.args))


def set_server_arg(name: str, value: Any) -> None:
    """Set KServe's parsed ``name`` (e.g. ``grpc_max_receive_message_length``)."""
    if not hasattr(model_server.args, name):
        raise AttributeError(f"kserve.model_server.args has no {name!r}")
    setattr(model_server.args, name, value)


# --- the ModelServer's two servers ------------------------------------------------------------


def rest_server_of(server: ModelServer) -> RESTServer | None:
    rest: RESTServer | None = server._rest_server
    return rest


def grpc_server_of(server: ModelServer) -> GRPCServer | None:
    grpc: GRPCServer | None = server._grpc_server
    return grpc


def set_servers(
    server: ModelServer, rest: RESTServer | None = None, grpc: GRPCServer | None = None
) -> None:
    """Where KServe's ``ModelServer`` keeps its servers (its ``stop`` stops the gRPC one)."""
    if rest is not None:
        server._rest_server = rest
    if grpc is not None:
        server._grpc_server = grpc


def register_models(server: ModelServer, models: list[Any]) -> None:
    """Register ``models``; KServe raises unless one is ready."""
    server._register_and_check_atleast_one_model_is_ready(models)


def uvicorn_of(rest: RESTServer) -> Any:
    """The ``uvicorn.Server`` a ``RESTServer`` runs."""
    return rest._server


REST_HANDLERS_HOOK = "_add_exception_handlers"  # RESTServer method Berth extends (server.py)


# --- the GRPCServer's parts -------------------------------------------------------------------


def grpc_server_parts(grpc: GRPCServer) -> tuple[Any, Any, dict[str, Any], int]:
    """``(data_plane, model_repository_extension, kwargs, port)`` as given to ``GRPCServer``."""
    return grpc._data_plane, grpc._model_repository_extension, grpc._kwargs, grpc._port


def aio_server_of(grpc: GRPCServer) -> Any:
    """The ``grpc.aio.Server`` once started (None before)."""
    return grpc._server


def set_aio_server(grpc: GRPCServer, server: Any) -> None:
    """Where ``GRPCServer.stop`` looks for the ``grpc.aio.Server`` it stops."""
    grpc._server = server


# --- the OIP properties field KServe's proto lacks --------------------------------------------

PROPERTIES_FIELD = 6  # ModelMetadataResponse.properties in the OIP gRPC proto


def _properties_message() -> type[message.Message]:
    """A message with only the OIP's field 6, declared at run time in a private pool."""
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


OipProperties = _properties_message()


def properties_wire(props: dict[str, str]) -> bytes:
    """``props`` as field 6 of a ``ModelMetadataResponse``, for ``MergeFromString``."""
    holder: Any = OipProperties()
    holder.properties.update(props)
    return bytes(holder.SerializeToString(deterministic=True))
