"""The transformer between a real redis-server, the real feature repo and the real predictor.

One stack for the module: a private redis-server, ``python -m berth_predictor`` on the small
artifact, a recording gRPC proxy in front of it (to see exactly what the transformer sends),
transformer A (gRPC V2 to the predictor through the proxy; ``customer_profile`` missing ->
reject, ``driver_profile`` stale -> reject, everything else -> default) and transformer B
(REST V2 straight to the predictor, all defaults). Tests that break the stack (Redis down,
predictor down) run last and put it back.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import shutil
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pandas as pd
import pytest
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.grpc.grpc_predict_v2_pb2_grpc import GRPCInferenceServiceStub

from berth.artifact import read_metadata
from berth.loadtest import v2_inputs
from berth.scrape import Metrics, scrape
from berth.stack import (
    LOOPBACK,
    Ports,
    RedisServer,
    ServerProcess,
    feature_env,
    free_port,
    predictor_process,
    transformer_process,
)
from berth.stack import Stack as Processes
from tests.support.env import patched_env

pytestmark = pytest.mark.integration

MODEL = "driver-ranking"
SERVICE = "driver_ranking_v1"
UNKNOWN_DRIVER = 7001  # in no view: missing -> default
UNKNOWN_CUSTOMER = 9001  # customer_profile missing -> reject (400)
STALE_STATS_DRIVER = 7002  # driver_hourly_stats 3 h old (TTL 2 h) -> default
STALE_PROFILE_DRIVER = 7003  # driver_profile 100 d old (TTL 90 d) -> reject (503)
# Definitions and parquet data only: the registry records the original's absolute SQLite path,
# and applying a copy of it would drop the shared `built` repo's online tables.
FRESH = shutil.ignore_patterns("registry.db", "online_store.db")


# --- helpers -----------------------------------------------------------------------------


class GrpcSpy(grpc.GenericRpcHandler):
    """A loopback gRPC proxy: forwards every call as raw bytes, records ModelInfer requests
    (and their metadata), and can delay or rewrite them."""

    def __init__(self, upstream: str) -> None:
        self.port = free_port()
        self.requests: list[tuple[pb.ModelInferRequest, dict[str, str]]] = []
        self.delay_s = 0.0
        self.rewrite: Callable[[pb.ModelInferRequest], pb.ModelInferRequest] | None = None
        self._channel = grpc.insecure_channel(upstream)
        self._server = grpc.server(ThreadPoolExecutor(max_workers=8))
        self._server.add_generic_rpc_handlers([self])
        self._server.add_insecure_port(f"{LOOPBACK}:{self.port}")
        self._server.start()

    def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        method = details.method
        forward = self._channel.unary_unary(method)

        def handle(request: bytes, context: grpc.ServicerContext) -> bytes:
            metadata = dict(context.invocation_metadata())
            if method.endswith("/ModelInfer"):
                message = pb.ModelInferRequest.FromString(request)
                self.requests.append((message, metadata))
                time.sleep(self.delay_s)
                if self.rewrite is not None:
                    request = self.rewrite(message).SerializeToString()
            try:
                response, call = forward.with_call(
                    request, metadata=list(metadata.items()), timeout=30
                )
            except grpc.RpcError as exc:
                context.abort(exc.code(), exc.details())
                raise
            context.set_trailing_metadata(call.trailing_metadata() or ())
            return response  # type: ignore[no-any-return]

        return grpc.unary_unary_rpc_method_handler(handle)

    def last_features(self) -> np.ndarray:
        request, _ = self.requests[-1]
        shape = list(request.inputs[0].shape)
        if request.raw_input_contents:
            return np.frombuffer(request.raw_input_contents[0], dtype="<f4").reshape(shape)
        return np.asarray(request.inputs[0].contents.fp32_contents, np.float32).reshape(shape)

    def close(self) -> None:
        self._server.stop(0)
        self._channel.close()


def redis_env(redis: RedisServer) -> AbstractContextManager[None]:
    return patched_env(REDIS_CONNECTION_STRING=redis.connection_string)


def materialize(repo: Path, redis: RedisServer) -> None:
    """Apply the repo, put every entity's latest row online, then the stale/odd test rows."""
    from berth.featurerepo import materialize_latest

    with redis_env(redis):
        store = materialize_latest(repo)
        now = datetime.now(UTC)
        stats = pd.read_parquet(repo / "data" / "driver_hourly_stats.parquet").tail(1)
        profile = pd.read_parquet(repo / "data" / "driver_profile.parquet").head(1)
        ts = pd.Timestamp(now)
        for view, frame, driver, age in (
            ("driver_hourly_stats", stats, STALE_STATS_DRIVER, timedelta(hours=3)),
            ("driver_profile", profile, STALE_STATS_DRIVER, timedelta(minutes=5)),
            ("driver_hourly_stats", stats, STALE_PROFILE_DRIVER, timedelta(minutes=5)),
            ("driver_profile", profile, STALE_PROFILE_DRIVER, timedelta(days=100)),
        ):
            row = frame.assign(driver_id=driver, event_timestamp=ts - age, created=ts - age)
            store.write_to_online_store(view, row.reset_index(drop=True))


@dataclass
class Stack:
    repo: Path
    artifact: Path
    redis: RedisServer
    processes: Processes  # predictor, a (gRPC V2 via the spy, reject policies), b (REST V2)
    predictor_ports: Ports
    spy: GrpcSpy
    a_http: str
    a_grpc: str
    b_http: str

    @property
    def a(self) -> ServerProcess:
        return self.processes.procs["a"]

    @property
    def b(self) -> ServerProcess:
        return self.processes.procs["b"]

    def start_predictor(self) -> ServerProcess:
        """Start the predictor again on its ports (after a test stopped it)."""
        return start_predictor(self.processes, self.artifact, self.predictor_ports)

    def metrics(self) -> Metrics:
        return scrape(self.a_http)


def start_predictor(processes: Processes, artifact: Path, ports: Ports) -> ServerProcess:
    log = processes.log_path("predictor")
    return processes.start("predictor", predictor_process(MODEL, artifact, ports, log_path=log))


@pytest.fixture(scope="module")
def stack(
    built: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory, module_processes: Processes
) -> Iterator[Stack]:
    if importlib.util.find_spec("berth_predictor.__main__") is None:
        pytest.skip("predictors/berth_predictor has no __main__ yet")
    if not RedisServer.available():
        pytest.skip("redis-server binary not found")
    root = tmp_path_factory.mktemp("transformer")
    repo = Path(shutil.copytree(built[0], root / "repo", ignore=FRESH))
    artifact = built[1]
    redis = RedisServer().start()
    spy: GrpcSpy | None = None
    try:
        predictor_ports = Ports.free()
        start_predictor(module_processes, artifact, predictor_ports)
        materialize(repo, redis)
        spy = GrpcSpy(predictor_ports.grpc_target)
        env = {
            **feature_env(repo, artifact, redis.connection_string),
            "BERTH_TRANSFORMER_FEATURE_TIMEOUT_MS": "2000",
            "BERTH_TRANSFORMER_MAX_CANDIDATES": "50",
        }
        a_ports, b_ports = Ports.free(), Ports.free()
        a_env = {
            **env,
            "BERTH_TRANSFORMER_MISSING_POLICY": json.dumps({"customer_profile": "reject"}),
            "BERTH_TRANSFORMER_STALE_POLICY": json.dumps({"driver_profile": "reject"}),
            "BERTH_TRANSFORMER_PREDICTOR_TIMEOUT_MS": "1500",
        }
        a = transformer_process(
            MODEL, f"{LOOPBACK}:{spy.port}", a_ports, env=a_env, log_path=root / "transformer_a.log"
        )
        b = transformer_process(
            MODEL,
            f"{LOOPBACK}:{predictor_ports.http}",
            b_ports,
            env=env,
            log_path=root / "transformer_b.log",
            predictor_protocol="v2",
        )
        module_processes.start("a", a)
        module_processes.start("b", b)
        module_processes.wait_ready(120)
        yield Stack(
            repo,
            artifact,
            redis,
            module_processes,
            predictor_ports,
            spy,
            a_ports.url,
            a_ports.grpc_target,
            b_ports.url,
        )
    finally:
        module_processes.stop()
        if spy is not None:
            spy.close()
        redis.close()


def rows_for(drivers: list[int], customer: int = 7, km: float = 4.2, hour: int = 18) -> list[dict]:
    return [
        {"customer_id": customer, "driver_id": d, "trip_distance_km": km, "pickup_hour": hour}
        for d in drivers
    ]


def post(url: str, body: Any, headers: dict[str, str] | None = None) -> tuple[int, dict, dict]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=15) as resp:
            return resp.status, json.loads(resp.read()), dict(resp.headers)
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read()), dict(err.headers)


def v1(http: str, rows: list[dict], headers: dict[str, str] | None = None) -> tuple[int, dict]:
    status, body, _ = post(f"{http}/v1/models/{MODEL}:predict", {"instances": rows}, headers)
    return status, body


def grpc_infer(
    target: str, rows: list[dict], request_id: str | None = None, raw: bool = False
) -> pb.ModelInferResponse:
    kinds = {"INT64": ("int64_contents", "<i8"), "FP32": ("fp32_contents", "<f4")}
    request = pb.ModelInferRequest(model_name=MODEL)
    for t in v2_inputs(rows):
        field, dtype = kinds[t["datatype"]]
        tensor = request.inputs.add(name=t["name"], datatype=t["datatype"], shape=t["shape"])
        if raw:
            request.raw_input_contents.append(np.asarray(t["data"], dtype).tobytes())
        else:
            getattr(tensor.contents, field).extend(t["data"])
    metadata = [("x-request-id", request_id)] if request_id else None
    with grpc.insecure_channel(target) as channel:
        return GRPCInferenceServiceStub(channel).ModelInfer(  # type: ignore[no-any-return]
            request, metadata=metadata, timeout=15
        )


def f32(values: list[float]) -> np.ndarray:
    return np.asarray(values, dtype=np.float32)


# --- tests -------------------------------------------------------------------------------


def test_v1_v2_rest_and_grpc_return_the_same_scores(stack: Stack) -> None:
    rows = rows_for([1003, 1001, 1010, 1002])
    status, body = v1(stack.a_http, rows)
    assert status == 200
    scores = f32(body["predictions"])
    assert body["model_version"] == read_metadata(stack.artifact).version
    assert np.all((scores >= 0) & (scores <= 1))

    status, v2_body, _ = post(
        f"{stack.a_http}/v2/models/{MODEL}/infer", {"inputs": v2_inputs(rows)}
    )
    assert status == 200
    (output,) = v2_body["outputs"]
    assert (output["name"], output["datatype"], output["shape"]) == ("score", "FP32", [4])
    np.testing.assert_array_equal(f32(output["data"]), scores)
    assert v2_body["id"]  # generated: the request had none

    grpc_scores = f32(list(grpc_infer(stack.a_grpc, rows).outputs[0].contents.fp32_contents))
    np.testing.assert_array_equal(grpc_scores, scores)
    raw = grpc_infer(stack.a_grpc, rows, raw=True)  # raw_input_contents in, raw out
    np.testing.assert_array_equal(np.frombuffer(raw.raw_output_contents[0], "<f4"), scores)

    # Transformer B reaches the same predictor over REST V2, binary tensors both ways: same
    # scores, and the predictor counts the request under its binary extension's label.
    binary = "berth_predictor_request_seconds_count"
    before = scrape(stack.predictor_ports.url).total(binary, protocol="v2-binary", outcome="200")
    status, b_body = v1(stack.b_http, rows)
    assert status == 200
    np.testing.assert_array_equal(f32(b_body["predictions"]), scores)
    after = scrape(stack.predictor_ports.url).total(binary, protocol="v2-binary", outcome="200")
    assert after == before + 1

    # Input order is kept.
    _, reversed_body = v1(stack.a_http, rows[::-1])
    np.testing.assert_array_equal(f32(reversed_body["predictions"]), scores[::-1])


def test_v2_metadata_describes_the_request_tensors_over_rest_and_grpc(stack: Stack) -> None:
    """A V2 client can build a request from the transformer's metadata alone."""
    want_inputs = [
        {"name": "customer_id", "datatype": "INT64", "shape": [-1]},
        {"name": "driver_id", "datatype": "INT64", "shape": [-1]},
        {"name": "trip_distance_km", "datatype": "FP32", "shape": [-1]},
        {"name": "pickup_hour", "datatype": "INT64", "shape": [-1]},
    ]
    want_outputs = [{"name": "score", "datatype": "FP32", "shape": [-1]}]
    with urllib.request.urlopen(f"{stack.a_http}/v2/models/{MODEL}", timeout=10) as resp:
        meta = json.loads(resp.read())
    assert (meta["name"], meta["inputs"], meta["outputs"]) == (MODEL, want_inputs, want_outputs)
    version = read_metadata(stack.artifact).version
    assert (meta["versions"], meta["platform"]) == ([version], "berth_transformer")
    with grpc.insecure_channel(stack.a_grpc) as channel:
        stub = GRPCInferenceServiceStub(channel)
        reply = stub.ModelMetadata(pb.ModelMetadataRequest(name=MODEL), timeout=10)
        with pytest.raises(grpc.RpcError) as other:
            stub.ModelMetadata(pb.ModelMetadataRequest(name=MODEL, version="v0"), timeout=10)
    assert other.value.code() == grpc.StatusCode.NOT_FOUND
    as_dicts = [
        {"name": t.name, "datatype": t.datatype, "shape": list(t.shape)} for t in reply.inputs
    ]
    assert as_dicts == want_inputs and [t.name for t in reply.outputs] == ["score"]
    assert (list(reply.versions), reply.platform) == (meta["versions"], meta["platform"])
    versioned = f"{stack.a_http}/v2/models/{MODEL}/versions/{version}"
    for url in (versioned, f"{versioned}/ready"):
        with urllib.request.urlopen(url, timeout=10) as resp:
            assert resp.status == 200
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(f"{stack.a_http}/v2/models/{MODEL}/versions/v0/ready", timeout=10)
    assert missing.value.code == 404
    # What the metadata describes is what the transformer takes.
    rows = rows_for([1003, 1001])
    body = {
        "inputs": [
            {**t, "shape": [len(rows)], "data": [r[t["name"]] for r in rows]} for t in want_inputs
        ]
    }
    status, answer, _ = post(f"{stack.a_http}/v2/models/{MODEL}/infer", body)
    assert status == 200 and answer["outputs"][0]["shape"] == [2]


def test_v2_rest_binary_tensors_in_and_out_as_the_extension_describes(stack: Stack) -> None:
    """Binary inputs after the JSON header; the score output in binary when the request asks
    for it, per output or for the whole request; an unknown output name is a 400."""
    rows = rows_for([1003, 1001, 1010])
    _, plain, _ = post(f"{stack.a_http}/v2/models/{MODEL}/infer", {"inputs": v2_inputs(rows)})
    want = f32(plain["outputs"][0]["data"])
    arrays = {
        t["name"]: np.asarray(t["data"], "<f4" if t["datatype"] == "FP32" else "<i8")
        for t in v2_inputs(rows)
    }
    tensors = [
        {**{k: t[k] for k in ("name", "datatype", "shape")},
         "parameters": {"binary_data_size": arrays[t["name"]].nbytes}}
        for t in v2_inputs(rows)
    ]  # fmt: skip
    asks: list[dict[str, Any]] = [
        {"outputs": [{"name": "score", "parameters": {"binary_data": True}}]},
        {"parameters": {"binary_data_output": True}},
        {"parameters": {"binary_data_output": True}, "outputs": [{"name": "score"}]},
    ]
    for ask in asks:
        header = json.dumps({"inputs": tensors, **ask}).encode()
        request = urllib.request.Request(
            f"{stack.a_http}/v2/models/{MODEL}/infer",
            data=header + b"".join(a.tobytes() for a in arrays.values()),
            headers={
                "content-type": "application/octet-stream",
                "inference-header-content-length": str(len(header)),
            },
        )
        with urllib.request.urlopen(request, timeout=15) as resp:
            raw, json_length = resp.read(), int(resp.headers["inference-header-content-length"])
        (output,) = json.loads(raw[:json_length])["outputs"]
        assert output["parameters"]["binary_data_size"] == 4 * len(rows), ask
        np.testing.assert_array_equal(np.frombuffer(raw[json_length:], "<f4"), want)

    body = {"inputs": v2_inputs(rows), "outputs": [{"name": "scores"}]}
    status, error, _ = post(f"{stack.a_http}/v2/models/{MODEL}/infer", body)
    assert status == 400 and error["error"].startswith("outputs[0].name: unknown output 'scores'")


OIP_SPEC = Path(
    os.environ.get("BERTH_OIP_SPEC")
    or Path(__file__).resolve().parents[2].parent / "shared" / "oip" / "open_inference_rest.yaml"
)


def test_v2_rest_answers_validate_against_the_open_inference_protocol_schema(stack: Stack) -> None:
    """Every V2 REST answer of the transformer and of the predictor, against the OIP's own
    schemas (``../shared/oip``, read there, never copied), so a client generated from the
    spec reads them: no ``null`` where the spec has an object or an array."""
    if not OIP_SPEC.exists():
        pytest.skip(f"the Open Inference Protocol spec is not at {OIP_SPEC} (BERTH_OIP_SPEC)")
    import jsonschema
    import yaml

    spec = yaml.safe_load(OIP_SPEC.read_text())

    def check(url: str, schema: str, body: object | None = None) -> None:
        request = urllib.request.Request(
            url,
            data=None if body is None else json.dumps(body).encode(),
            headers={"content-type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=15) as resp:
                answer = json.loads(resp.read())
        except urllib.error.HTTPError as err:
            answer = json.loads(err.read())
        wrapped = {**spec, "$ref": f"#/components/schemas/{schema}"}
        try:
            jsonschema.validate(answer, wrapped)
        except jsonschema.ValidationError as exc:
            raise AssertionError(f"{url}: {exc.message} in {answer}") from None

    rows = rows_for([1003, 1001])
    predictor = f"http://{LOOPBACK}:{stack.predictor_ports[0]}"
    matrix = np.ones((2, len(read_metadata(stack.artifact).features)), np.float32)
    calls = [
        (stack.a_http, {"inputs": v2_inputs(rows)}),
        (stack.a_http, {"id": "r-1", "inputs": v2_inputs(rows), "outputs": [{"name": "score"}]}),
        (
            predictor,
            {
                "inputs": [
                    {
                        "name": "features",
                        "datatype": "FP32",
                        "shape": list(matrix.shape),
                        "data": matrix.ravel().tolist(),
                    }
                ]
            },
        ),
    ]
    for base, body in calls:
        check(f"{base}/v2", "metadata_server_response")
        check(f"{base}/v2/models/{MODEL}", "metadata_model_response")
        check(f"{base}/v2/models/{MODEL}/infer", "inference_response", body)
        check(f"{base}/v2/models/{MODEL}/infer", "inference_error_response", {"inputs": []})
        check(f"{base}/v2/models/nope", "metadata_model_error_response")


def test_request_id_is_echoed_and_forwarded(stack: Stack) -> None:
    _, _, headers = post(
        f"{stack.a_http}/v1/models/{MODEL}:predict",
        {"instances": rows_for([1001])},
        {"x-request-id": "rid-serving-1"},
    )
    assert headers["x-request-id"] == "rid-serving-1"
    _, metadata = stack.spy.requests[-1]
    assert metadata["x-request-id"] == "rid-serving-1"
    response = grpc_infer(stack.a_grpc, rows_for([1001]), request_id="rid-serving-2")
    assert response.id == "rid-serving-2"
    assert stack.spy.requests[-1][1]["x-request-id"] == "rid-serving-2"


def test_features_sent_equal_point_in_time_training_rows(stack: Stack) -> None:
    """Skew test. Sampled (driver, customer, trip, hour) rows of the training data, at the
    current time: the rows the transformer sends the predictor equal, bit for bit, the rows
    ``get_historical_features`` (the training path) returns for the same entities at that
    time (+ i microseconds for row i). The data ends at the hour of the build and was
    materialized up to now, so the online value of every view is its point-in-time value now
    (and inside every TTL)."""
    from berth.featurerepo import open_store

    rides = pd.read_parquet(stack.repo / "data" / "rides.parquet")
    sample = rides.sample(40, random_state=3).reset_index(drop=True)
    rows = [
        {
            "customer_id": int(r.customer_id),
            "driver_id": int(r.driver_id),
            "trip_distance_km": float(r.trip_distance_km),
            "pickup_hour": int(r.pickup_hour),
        }
        for r in sample.itertuples()
    ]
    now = pd.Timestamp(datetime.now(UTC))
    status, _ = v1(stack.a_http, rows)
    assert status == 200
    sent = stack.spy.last_features()

    with redis_env(stack.redis):
        store = open_store(stack.repo)
        # One microsecond apart: Feast's file (dask) offline store drops entity rows that share
        # a join key and an event timestamp (14 of these 40 would vanish).
        entity_df = sample[["driver_id", "customer_id", "trip_distance_km", "pickup_hour"]].assign(
            event_timestamp=[now + pd.Timedelta(microseconds=i) for i in range(len(sample))],
            row=np.arange(len(sample)),
        )
        frame = store.get_historical_features(
            entity_df=entity_df, features=store.get_feature_service(SERVICE)
        ).to_df()
    frame = frame.loc[:, ~frame.columns.duplicated()].sort_values("row")
    names = read_metadata(stack.artifact).feature_names
    assert not frame[names].isna().any().any(), "every sampled entity has fresh features"
    training = frame[names].to_numpy(dtype=np.float32)
    assert sent.shape == training.shape == (40, 20)
    mismatch = np.argwhere(sent != training)
    assert mismatch.size == 0, [
        (names[j], float(sent[i, j]), float(training[i, j])) for i, j in mismatch[:5]
    ]


def test_decode_reads_what_feast_to_dict_returns(stack: Stack) -> None:
    """The transformer decodes Feast's response proto itself (only the columns it uses)."""
    from berth.featurerepo import open_store
    from berth_transformer.features import decode

    rows = rows_for([1001, UNKNOWN_DRIVER, STALE_STATS_DRIVER], customer=UNKNOWN_CUSTOMER)
    columns = {k: [r[k] for r in rows] for k in rows[0]}
    with redis_env(stack.redis):
        store = open_store(stack.repo)
        response = store.get_online_features(
            features=store.get_feature_service(SERVICE), entity_rows=columns
        )
    wanted = frozenset(read_metadata(stack.artifact).feature_names) | {"driver_id"}
    expected = response.to_dict(include_event_timestamps=True)
    decoded = decode(response.proto, wanted)
    assert decoded == {k: expected[k] for k in decoded}
    assert set(decoded) == wanted | {f"{name}__ts" for name in wanted}


def test_direct_redis_source_reads_what_feast_sdk_reads(stack: Stack) -> None:
    """The transformers serve through the direct Redis source; it returns exactly the values
    and event times of Feast's SDK for the same rows: known, unknown, stale and repeated
    drivers, a known and an unknown customer."""
    from berth.featurerepo import open_store, service_contract
    from berth_transformer.features import FeastSource, open_reader
    from berth_transformer.features.redis_source import RedisSource

    for server in (stack.a, stack.b):
        assert "feature source: direct Redis reads" in server.log_path.read_text()
    drivers = [1001, 1002, UNKNOWN_DRIVER, STALE_STATS_DRIVER, STALE_PROFILE_DRIVER, 1001, 1050]
    with redis_env(stack.redis):
        store = open_store(stack.repo)
        contract = service_contract(store, SERVICE)
        reader = open_reader(store, SERVICE, contract, None, {}, {}, 5.0)
        assert isinstance(reader.source, RedisSource)
        sdk = FeastSource(store, store.get_feature_service(SERVICE), reader.features)

        async def compare_both() -> int:
            compared = 0
            try:
                for customer in (7, UNKNOWN_CUSTOMER):
                    rows = rows_for(drivers, customer=customer, km=3.5, hour=9)
                    columns = {k: [r[k] for r in rows] for k in rows[0]}
                    sdk_values, sdk_stamps = await sdk.fetch(columns)
                    direct_values, direct_stamps = await reader.source.fetch(columns)
                    np.testing.assert_array_equal(direct_values, sdk_values)
                    np.testing.assert_array_equal(direct_stamps, sdk_stamps)
                    assert np.isnan(direct_values).any()  # the unknown driver (and customer)
                    compared += 1
            finally:
                await reader.source.close()
            return compared

        assert asyncio.run(compare_both()) == 2


def test_bad_input_is_400_naming_the_field(stack: Stack) -> None:
    bad = [{"customer_id": 7, "driver_id": 1001, "trip_distance_km": 4.2}]
    status, body, headers = post(f"{stack.a_http}/v1/models/{MODEL}:predict", {"instances": bad})
    assert status == 400
    assert body["error"].startswith("instances[0].pickup_hour")
    assert len(headers["x-request-id"]) == 32  # generated, and given back with the error

    inputs = v2_inputs(rows_for([1001]))
    inputs[2]["datatype"] = "INT64"
    inputs[2]["data"] = [4]
    status, body, _ = post(f"{stack.a_http}/v2/models/{MODEL}/infer", {"inputs": inputs})
    assert status == 400
    assert body["error"].startswith("trip_distance_km: datatype must be FP32")

    with pytest.raises(grpc.RpcError) as err:
        grpc_infer(stack.a_grpc, rows_for([1001], hour=25))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.details().startswith("pickup_hour")

    status, body = v1(stack.a_http, rows_for(list(range(1001, 1052))))  # 51 > MAX_CANDIDATES
    assert status == 400
    assert "at most 50" in body["error"]


def test_missing_and_stale_values_follow_the_policy_and_show_in_metrics(stack: Stack) -> None:
    meta = read_metadata(stack.artifact)
    defaults = f32([f.default for f in meta.features])
    views = [f.view for f in meta.features]
    hourly = np.array([v == "driver_hourly_stats" for v in views])
    profile = np.array([v == "driver_profile" for v in views])
    before = stack.metrics()

    # Unknown driver (default policy): every driver feature is the artifact's default.
    status, _ = v1(stack.a_http, rows_for([UNKNOWN_DRIVER, 1001]))
    assert status == 200
    sent = stack.spy.last_features()
    np.testing.assert_array_equal(sent[0, hourly | profile], defaults[hourly | profile])
    assert not np.array_equal(sent[1, hourly], defaults[hourly])

    # Stale hourly stats (3 h > TTL 2 h, default policy): filled; its fresh profile is kept.
    status, _ = v1(stack.a_http, rows_for([STALE_STATS_DRIVER]))
    assert status == 200
    sent = stack.spy.last_features()
    np.testing.assert_array_equal(sent[0, hourly], defaults[hourly])
    assert not np.array_equal(sent[0, profile], defaults[profile])

    # Unknown customer (reject policy): 400 naming the entity key, nothing sent.
    sent_before = len(stack.spy.requests)
    status, body = v1(stack.a_http, rows_for([1001], customer=UNKNOWN_CUSTOMER))
    assert status == 400
    assert body["error"].startswith("customer_id: no features in customer_profile")
    assert f"customer_id={UNKNOWN_CUSTOMER}" in body["error"]
    # Stale driver profile (100 d > TTL 90 d, reject policy): 503, nothing internal said.
    status, body = v1(stack.a_http, rows_for([STALE_PROFILE_DRIVER]))
    assert status == 503
    assert body == {"error": "fresh features unavailable, retry later"}
    assert len(stack.spy.requests) == sent_before

    after = stack.metrics()

    def delta(kind: str, view: str, action: str) -> float:
        name = f"berth_transformer_features_{kind}_total"
        return after.total(name, view=view, action=action) - before.total(
            name, view=view, action=action
        )

    assert delta("missing", "driver_hourly_stats", "filled") == 1
    assert delta("missing", "driver_profile", "filled") == 1
    assert delta("stale", "driver_hourly_stats", "filled") == 1
    assert delta("missing", "customer_profile", "rejected") == 1
    assert delta("stale", "driver_profile", "rejected") == 1
    for name in (
        "berth_transformer_feature_read_seconds_count",
        "berth_transformer_predictor_call_seconds_count",
    ):
        assert after.total(name) > 0
    assert after.total("berth_transformer_request_seconds_count", protocol="v1", outcome="503")
    assert after.total("berth_transformer_request_seconds_count", protocol="v1", outcome="200")


def test_predictor_errors_keep_their_meaning(stack: Stack) -> None:
    rows = rows_for([1001, 1002])

    def drop_a_column(request: pb.ModelInferRequest) -> pb.ModelInferRequest:
        n, width = request.inputs[0].shape
        matrix = np.frombuffer(request.raw_input_contents[0], "<f4").reshape(n, width)
        request.inputs[0].shape[:] = [n, width - 1]
        request.raw_input_contents[0] = matrix[:, :-1].tobytes()
        return request

    stack.spy.rewrite = drop_a_column
    try:
        status, body = v1(stack.a_http, rows)
    finally:
        stack.spy.rewrite = None
    assert status == 400  # the predictor's 400 stays a 400, with its message
    assert body["error"].startswith("predictor rejected the input")

    stack.spy.delay_s = 3.0  # > BERTH_TRANSFORMER_PREDICTOR_TIMEOUT_MS=1500
    try:
        status, body = v1(stack.a_http, rows)
    finally:
        stack.spy.delay_s = 0.0
    assert status == 504
    assert body == {"error": "deadline exceeded while waiting for predictor"}
    time.sleep(1.6)  # let the delayed call drain
    assert v1(stack.a_http, rows)[0] == 200


def test_redis_down_is_503_and_recovers_without_restart(stack: Stack) -> None:
    rows = rows_for([1003, 1004, 1005])
    status, body = v1(stack.a_http, rows)
    assert status == 200
    baseline = body["predictions"]

    stack.redis.stop()
    try:
        for _ in range(3):
            status, body = v1(stack.a_http, rows)
            assert status == 503
            assert body == {"error": "online store unavailable, retry later"}
        with pytest.raises(grpc.RpcError) as err:
            grpc_infer(stack.a_grpc, rows)
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE
        assert err.value.details() == "online store unavailable, retry later"
        assert v1(stack.b_http, rows)[0] == 503
    finally:
        stack.redis.start()  # same port, empty (no persistence)
        materialize(stack.repo, stack.redis)
    pid_a, pid_b = stack.a.proc.pid, stack.b.proc.pid  # type: ignore[union-attr]
    status, body = v1(stack.a_http, rows)
    assert status == 200
    assert body["predictions"] == baseline
    assert v1(stack.b_http, rows) == (200, body)
    assert (stack.a.proc.pid, stack.b.proc.pid) == (pid_a, pid_b)  # type: ignore[union-attr]
    assert stack.a.proc.poll() is None  # type: ignore[union-attr]
    reads = "berth_transformer_feature_read_seconds_count"
    assert stack.metrics().total(reads, outcome="unavailable") >= 3


def test_predictor_down_is_503_and_recovers(stack: Stack) -> None:
    rows = rows_for([1001])
    stack.processes.procs["predictor"].stop()
    try:
        status, body = v1(stack.a_http, rows)
        assert status == 503
        assert body == {"error": "predictor unavailable, retry later"}
        status, body = v1(stack.b_http, rows)
        assert status == 503
        assert body == {"error": "predictor unavailable, retry later"}
    finally:
        stack.start_predictor().wait_ready(120)
    deadline = time.monotonic() + 10
    while (status := v1(stack.a_http, rows)[0]) != 200 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert status == 200
    assert v1(stack.b_http, rows)[0] == 200
