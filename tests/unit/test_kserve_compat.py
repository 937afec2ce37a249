"""Each KServe internal ``berth.serving.kserve_compat`` relies on, checked on the installed kserve.

Run this first when the kserve pin moves: a failure names the internal the upgrade moved, and
the accessor in ``kserve_compat`` to change.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kserve import model_server
from kserve.constants.constants import FASTAPI_APP_IMPORT_STRING
from kserve.model import InferenceVerb, Model
from kserve.model_server import ModelServer
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.grpc import server as kserve_grpc_server
from kserve.protocol.grpc.server import GRPCServer
from kserve.protocol.grpc.servicer import InferenceServicer
from kserve.protocol.rest.server import RESTServer

from berth.serving import kserve_compat as compat


@pytest.fixture(scope="module")
def server() -> ModelServer:
    return ModelServer(http_port=0, grpc_port=0, enable_grpc=False)


@pytest.fixture(scope="module")
def rest(server: ModelServer) -> RESTServer:
    return RESTServer(
        FASTAPI_APP_IMPORT_STRING, server.dataplane, server.model_repository_extension, 0
    )


@pytest.fixture
def grpc(server: ModelServer) -> GRPCServer:
    return GRPCServer(0, server.dataplane, server.model_repository_extension, {"k": 1})


@pytest.fixture
def servicer_global() -> Iterator[None]:
    saved = kserve_grpc_server.InferenceServicer
    yield
    kserve_grpc_server.InferenceServicer = saved


def _has(owner: object, name: str, internal: str) -> Any:
    assert hasattr(owner, name), f"kserve moved {internal}: fix berth.serving.kserve_compat"
    return getattr(owner, name)


def _params(function: Callable[..., Any]) -> list[str]:
    return list(inspect.signature(function).parameters)


def test_inference_servicer_is_built_from_its_module_global(
    grpc: GRPCServer, servicer_global: None
) -> None:
    internal = "kserve.protocol.grpc.server.InferenceServicer (module global)"
    assert _has(kserve_grpc_server, "InferenceServicer", internal) is InferenceServicer
    assert "InferenceServicer(" in inspect.getsource(GRPCServer.start), internal

    class Mine(InferenceServicer):  # type: ignore[misc]
        pass

    compat.use_inference_servicer(Mine)
    assert compat.inference_servicer_class() is Mine
    built = compat.new_inference_servicer(grpc)
    assert isinstance(built, Mine)
    assert _params(InferenceServicer.__init__)[1:3] == [
        "data_plane",
        "model_repository_extension",
    ], "kserve changed InferenceServicer.__init__(data_plane, model_repository_extension)"


@pytest.mark.parametrize("rpc", ["ServerReady", "ModelReady", "ModelMetadata", "ModelInfer"])
def test_servicer_methods_berth_overrides(rpc: str) -> None:
    method = _has(InferenceServicer, rpc, f"kserve InferenceServicer.{rpc}")
    assert _params(method) == ["self", "request", "context"], f"InferenceServicer.{rpc} signature"


def test_model_server_args_hold_the_grpc_options() -> None:
    args = _has(model_server, "args", "kserve.model_server.args (its parse of argv)")
    for name in ("grpc_max_receive_message_length", "grpc_max_send_message_length"):
        _has(args, name, f"kserve.model_server.args.{name}")
    saved = args.grpc_max_receive_message_length
    try:
        compat.set_server_arg("grpc_max_receive_message_length", 1234)
        assert compat.server_args()["grpc_max_receive_message_length"] == 1234
    finally:
        args.grpc_max_receive_message_length = saved
    with pytest.raises(AttributeError, match="no 'nope'"):
        compat.set_server_arg("nope", 1)


def test_model_server_keeps_its_servers_where_compat_looks(
    server: ModelServer, rest: RESTServer, grpc: GRPCServer
) -> None:
    for name in ("_rest_server", "_grpc_server"):
        _has(server, name, f"kserve ModelServer.{name}")
    _has(server, "servers", "kserve ModelServer.servers")
    assert compat.rest_server_of(server) is None and compat.grpc_server_of(server) is None
    compat.set_servers(server, rest=rest, grpc=grpc)
    assert compat.rest_server_of(server) is rest and compat.grpc_server_of(server) is grpc


def test_model_server_registers_models() -> None:
    internal = "kserve ModelServer._register_and_check_atleast_one_model_is_ready"
    method = _has(ModelServer, "_register_and_check_atleast_one_model_is_ready", internal)
    assert _params(method) == ["self", "models"], internal


def test_rest_server_runs_a_uvicorn_server(rest: RESTServer) -> None:
    uvicorn = compat.uvicorn_of(rest)
    for name in ("handle_exit", "server_state", "should_exit", "force_exit"):
        _has(uvicorn, name, f"kserve RESTServer._server (uvicorn.Server).{name}")
    assert hasattr(uvicorn.server_state, "connections"), "uvicorn ServerState.connections"
    _has(rest, "config", "kserve RESTServer.config (uvicorn.Config)")
    hook = _has(
        RESTServer, compat.REST_HANDLERS_HOOK, f"kserve RESTServer.{compat.REST_HANDLERS_HOOK}"
    )
    assert _params(hook) == ["self", "app"], f"RESTServer.{compat.REST_HANDLERS_HOOK} signature"


def test_grpc_server_parts(grpc: GRPCServer, server: ModelServer) -> None:
    for name in ("_data_plane", "_model_repository_extension", "_kwargs", "_port", "_server"):
        _has(grpc, name, f"kserve GRPCServer.{name}")
    data_plane, extension, kwargs, port = compat.grpc_server_parts(grpc)
    assert (data_plane, extension, kwargs, port) == (
        server.dataplane,
        server.model_repository_extension,
        {"k": 1},
        0,
    )
    assert compat.aio_server_of(grpc) is None
    compat.set_aio_server(grpc, "server")
    assert compat.aio_server_of(grpc) == "server"
    assert "self._server" in inspect.getsource(GRPCServer.stop), "GRPCServer.stop: _server"


def test_kserve_proto_still_lacks_the_oip_properties_field() -> None:
    fields = pb.ModelMetadataResponse.DESCRIPTOR.fields_by_number
    assert compat.PROPERTIES_FIELD not in fields, (
        "kserve's ModelMetadataResponse now declares field 6 (OIP properties): set it directly "
        "and drop kserve_compat.properties_wire"
    )
    response = pb.ModelMetadataResponse(name="m")
    response.MergeFromString(compat.properties_wire({"a": "1", "b": "2"}))
    raw = response.SerializeToString()
    assert pb.ModelMetadataResponse.FromString(raw).name == "m"
    assert dict(compat.OipProperties.FromString(raw).properties) == {"a": "1", "b": "2"}


def test_model_call_signature_the_served_model_wraps() -> None:
    assert _params(Model.__call__) == ["self", "body", "headers", "verb"], "kserve Model.__call__"
    assert InferenceVerb.PREDICT and InferenceVerb.EXPLAIN


def test_model_call_runs_the_handlers_served_model_runs() -> None:
    """``ServedModel.run_handlers`` mirrors KServe's ``Model.__call__``: the same handlers in
    the same order, with the response headers, and the same timing trace line."""
    source = inspect.getsource(Model.__call__)
    steps = [
        "self.preprocess(body, headers)",
        "self.validate(payload)",
        "self.explain(payload, headers)",
        "self.predict(payload, headers, response_headers)",
        "self.postprocess(response, headers, response_headers)",
        "trace_logger.info(",
        "return response, response_headers",
    ]
    at = [source.find(step) for step in steps]
    assert -1 not in at, dict(zip(steps, at, strict=True))
    assert at == sorted(at), "kserve Model.__call__ changed its order"
