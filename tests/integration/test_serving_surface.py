"""The serving surface around the happy path, on real processes (issue 13): the model-repository
extension closed by default and harmless when opened, grpc.health.v1 following readiness and
drain, server reflection only when asked."""

from __future__ import annotations

import json
import signal
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc as pbg

from berth.loadtest import MODEL
from berth.scrape import scrape
from berth.stack import LOOPBACK, free_port, predictor_process
from tests.support.serving import ServingStack

pytestmark = pytest.mark.integration

ROWS = [{"customer_id": 7, "driver_id": 1003, "trip_distance_km": 4.2, "pickup_hour": 18}]
Stack = Callable[..., AbstractContextManager[ServingStack]]


def call(method: str, url: str, body: Any = None) -> tuple[int, dict[str, Any]]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, method=method, headers={"content-type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else {}
    except urllib.error.HTTPError as err:
        raw = err.read()
        return err.code, json.loads(raw) if raw.startswith(b"{") else {"raw": raw.decode()}


def health(port: int, service: str = "") -> str:
    with grpc.insecure_channel(f"{LOOPBACK}:{port}") as channel:
        answer = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=5
        )
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status))


def grpc_code(port: int, method: str, request: Any) -> grpc.StatusCode:
    with grpc.insecure_channel(f"{LOOPBACK}:{port}") as channel:
        try:
            getattr(pbg.GRPCInferenceServiceStub(channel), method)(request, timeout=5)
        except grpc.RpcError as err:
            return err.code()  # type: ignore[no-any-return]
    return grpc.StatusCode.OK


def v2_body() -> dict[str, Any]:
    from berth.loadtest import v2_inputs

    return {"inputs": v2_inputs(ROWS)}


def serving_state(stack: ServingStack) -> dict[str, Any]:
    """What a client sees of the transformer: every route's status and the readiness."""
    url, grpc_port = stack.url, stack.transformer_ports[1]
    infer = pb.ModelInferRequest(model_name=MODEL)
    return {
        "v1": call("POST", stack.infer_url, {"instances": ROWS})[0],
        "v2": call("POST", f"{url}/v2/models/{MODEL}/infer", v2_body())[0],
        "ready": call("GET", f"{url}/v2/health/ready")[0],
        "model_ready": call("GET", f"{url}/v2/models/{MODEL}/ready")[0],
        "grpc_health": health(grpc_port),
        "grpc_ready": grpc_code(grpc_port, "ServerReady", pb.ServerReadyRequest()),
        "grpc_metadata": grpc_code(grpc_port, "ModelMetadata", pb.ModelMetadataRequest(name=MODEL)),
        "grpc_infer_is_not_found": grpc_code(grpc_port, "ModelInfer", infer)
        == grpc.StatusCode.NOT_FOUND,
    }


SERVING = {
    "v1": 200,
    "v2": 200,
    "ready": 200,
    "model_ready": 200,
    "grpc_health": "SERVING",
    "grpc_ready": grpc.StatusCode.OK,
    "grpc_metadata": grpc.StatusCode.OK,
    "grpc_infer_is_not_found": False,
}


def test_the_model_repository_extension_is_off_by_default(serving_stack: Stack) -> None:
    """Found: unload answered 200 and left the transformer half-serving until a restart."""
    with serving_stack("repo-off") as stack:
        for base, role in ((stack.url, "TRANSFORMER"), (stack.predictor_url, "PREDICTOR")):
            for path in (f"models/{MODEL}/unload", f"models/{MODEL}/load"):
                status, body = call("POST", f"{base}/v2/repository/{path}", {})
                assert status == 404, (path, body)
                assert f"BERTH_{role}_MODEL_REPOSITORY=true" in body["error"]
        for port in (stack.transformer_ports[1], stack.predictor_ports[1]):
            code = grpc_code(port, "RepositoryModelUnload", unload_request())
            assert code == grpc.StatusCode.UNIMPLEMENTED
        assert serving_state(stack) == SERVING


def unload_request() -> Any:
    return pb.RepositoryModelUnloadRequest(model_name=MODEL)


def test_unload_takes_the_transformer_out_of_service_and_load_puts_it_back(
    serving_stack: Stack,
) -> None:
    """Opened, the extension cannot leave the container half-serving: readiness follows."""
    env = {"BERTH_TRANSFORMER_MODEL_REPOSITORY": "true"}
    with serving_stack("repo-on", transformer_env=env) as stack:
        assert serving_state(stack) == SERVING
        assert call("POST", f"{stack.url}/v2/repository/models/{MODEL}/unload", {})[0] == 200
        out = serving_state(stack)
        assert out["ready"] == 503 and out["model_ready"] in (404, 503)
        assert out["v1"] == 404 and out["v2"] == 404 and out["grpc_infer_is_not_found"]
        assert out["grpc_health"] == "NOT_SERVING"
        load = pb.RepositoryModelLoadRequest(model_name=MODEL)  # over gRPC this time
        assert grpc_code(stack.transformer_ports[1], "RepositoryModelLoad", load).name == "OK"
        assert serving_state(stack) == SERVING


def test_unload_takes_the_predictor_out_of_service_and_load_puts_it_back(
    built: tuple[Path, Path], tmp_path: Path
) -> None:
    http, grpc_port = free_port(), free_port()
    env = {"BERTH_PREDICTOR_MODEL_REPOSITORY": "true"}
    proc = predictor_process(MODEL, built[1], (http, grpc_port), env, tmp_path / "p.log")
    base = f"http://{LOOPBACK}:{http}"
    infer = f"{base}/v1/models/{MODEL}:predict"
    row = {"instances": [[0.5] * 20]}
    proc.start()
    try:
        proc.wait_ready(120)
        assert call("POST", infer, row)[0] == 200
        assert call("POST", f"{base}/v2/repository/models/{MODEL}/unload", {})[0] == 200
        assert call("GET", f"{base}/v2/health/ready")[0] == 503
        assert call("POST", infer, row)[0] in (404, 503)
        assert health(grpc_port) == "NOT_SERVING"
        assert call("POST", f"{base}/v2/repository/models/{MODEL}/load", {})[0] == 200
        assert call("GET", f"{base}/v2/health/ready")[0] == 200
        assert call("POST", infer, row)[0] == 200
        assert health(grpc_port) == "SERVING"
    finally:
        proc.stop()


def test_grpc_health_follows_readiness_and_drain(built: tuple[Path, Path], tmp_path: Path) -> None:
    """Found: grpc.health.v1.Health/Check was UNIMPLEMENTED, so a `grpc:` probe could not work.
    SERVING once warm (the service name too), NOT_SERVING as soon as SIGTERM starts the drain,
    while the port still answers."""
    http, grpc_port = free_port(), free_port()
    env = {"BERTH_PREDICTOR_SHUTDOWN_DELAY_S": "3", "BERTH_PREDICTOR_SHUTDOWN_GRACE_S": "6"}
    proc = predictor_process(MODEL, built[1], (http, grpc_port), env, tmp_path / "p.log").start()
    try:
        proc.wait_ready(120)
        assert health(grpc_port) == "SERVING"
        assert health(grpc_port, "inference.GRPCInferenceService") == "SERVING"
        with pytest.raises(grpc.RpcError) as unknown:
            health(grpc_port, "no.such.Service")
        assert unknown.value.code() == grpc.StatusCode.NOT_FOUND
        proc.signal(signal.SIGTERM)
        time.sleep(0.5)
        assert health(grpc_port) == "NOT_SERVING"
    finally:
        proc.stop()


def reflected_services(port: int) -> list[str]:
    with grpc.insecure_channel(f"{LOOPBACK}:{port}") as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        answers = list(stub.ServerReflectionInfo(iter([request]), timeout=5))
    return sorted(s.name for s in answers[0].list_services_response.service)


def test_reflection_is_off_by_default_and_lists_the_services_when_on(
    built: tuple[Path, Path], tmp_path: Path
) -> None:
    """grpcurl without the .proto: only with BERTH_PREDICTOR_GRPC_REFLECTION=true."""
    for value in ("false", "true"):
        http, grpc_port = free_port(), free_port()
        env = {"BERTH_PREDICTOR_GRPC_REFLECTION": value}
        log = tmp_path / f"p-{value}.log"
        proc = predictor_process(MODEL, built[1], (http, grpc_port), env, log).start()
        try:
            proc.wait_ready(120)
            if value == "false":
                with pytest.raises(grpc.RpcError) as off:
                    reflected_services(grpc_port)
                assert off.value.code() == grpc.StatusCode.UNIMPLEMENTED
            else:
                assert reflected_services(grpc_port) == [
                    "grpc.health.v1.Health",
                    "grpc.reflection.v1alpha.ServerReflection",
                    "inference.GRPCInferenceService",
                ]
        finally:
            proc.stop()


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def junk_then_series(stack: ServingStack, round_: int) -> set[str]:
    """Requests naming things that do not exist (new names each round), then every Berth
    series of both containers, without values."""
    for i in range(5):
        tag = f"junk-{round_}-{i}"
        call("POST", f"{stack.url}/v1/models/{tag}:predict", {"instances": ROWS})
        call("POST", f"{stack.url}/v2/models/{MODEL}/versions/{tag}/infer", v2_body())
        call("POST", f"{stack.predictor_url}/v2/models/{tag}/infer", v2_body())
        call("GET", f"{stack.url}/v2/models/{MODEL}/versions/{tag}/ready")
        for port in (stack.transformer_ports[1], stack.predictor_ports[1]):
            grpc_code(port, "ModelInfer", pb.ModelInferRequest(model_name=MODEL, model_version=tag))
    keys: set[str] = set()
    for base in (stack.url, stack.predictor_url):
        for key in scrape(base, timeout_s=10).by_series():
            if key.startswith("berth_") and not key.startswith("berth_transformer_drift"):
                keys.add(f"{base} {key}")
    return keys


def test_metrics_logs_and_trace_context(serving_stack: Stack) -> None:
    """Found: `_created` samples, idle `feast_*` series and KServe's request_*_seconds beside
    Berth's histograms; unknown-model 404s at ERROR with a traceback; no logger name; no trace
    context from the transformer to the predictor."""
    debug = {"LOG_LEVEL": "DEBUG"}
    with serving_stack(
        "hygiene",
        transformer_env={f"BERTH_TRANSFORMER_{k}": v for k, v in debug.items()},
        predictor_env={f"BERTH_PREDICTOR_{k}": v for k, v in debug.items()},
    ) as stack:
        trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
        request = urllib.request.Request(
            stack.infer_url,
            data=json.dumps({"instances": ROWS}).encode(),
            headers={
                "content-type": "application/json",
                "traceparent": f"00-{trace_id}-00f067aa0ba902b7-01",
                "x-request-id": "trace-me",
            },
        )
        with urllib.request.urlopen(request, timeout=10) as resp:
            assert resp.status == 200
        assert call("POST", f"{stack.url}/v1/models/nope:predict", {"instances": ROWS})[0] == 404
        nope = pb.ModelInferRequest(model_name="nope")
        assert (
            grpc_code(stack.transformer_ports[1], "ModelInfer", nope) == grpc.StatusCode.NOT_FOUND
        )
        for base, own in (
            (stack.url, "berth_transformer_"),
            (stack.predictor_url, "berth_predictor_"),
        ):
            names = {sample.name for sample in scrape(base, timeout_s=10)}
            assert any(n.startswith(f"{own}request_seconds") for n in names)
            assert not [n for n in names if n.endswith("_created")]
            assert not [n for n in names if n.startswith("feast_")]
            assert not [n for n in names if n.startswith("request_")]  # KServe's duplicates
        # Bounded label sets: what a client chooses (model names, versions, ids) adds no series.
        series = [junk_then_series(stack, round_) for round_ in range(2)]
        assert series[0] == series[1]
        time.sleep(0.5)  # the log lines of the last requests
        assert stack.transformer is not None and stack.predictor is not None
        transformer, predictor = stack.transformer.log(), stack.predictor.log()
        for log in (transformer, predictor):
            lines = json_lines(log)
            assert lines and all("logger" in line for line in lines), log[-3000:]
            assert "Traceback" not in log
        refused = [line for line in json_lines(transformer) if line.get("status") == 404]
        assert refused and all(line["level"] == "info" for line in refused)
        done = [line for line in json_lines(transformer) if line["event"] == "request done"]
        assert any(line["trace_id"] == trace_id for line in done)
        scored = [line for line in json_lines(predictor) if line["event"] == "request done"]
        assert [line["request_id"] for line in scored if line["trace_id"] == trace_id] == [
            "trace-me"
        ]
