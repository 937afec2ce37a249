"""Canary and shadow in the transformer, end to end on loopback with real processes.

``LocalStack`` (what ``berth up --canary DIR --canary-percent 20 --shadow DIR`` runs): a
private-or-shared redis-server, the primary predictor on the small ``driver_ranking_v1``
artifact, canary and shadow predictors on a second artifact of the same FeatureService built
from other data (``--seed 7 --version v1-canary``: other weights, so deltas are non-zero), and
the transformer. Two more transformers on the same primary and shadow predictors, one with the
shadow and one without, compare answers and p99 in one interleaved run.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest

from berth.local import Endpoints, LocalStack
from berth.scrape import scrape
from berth.stack import (
    Ports,
    RedisServer,
    ServerProcess,
    Stack,
    feature_env,
    free_port,
    transformer_process,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CANARY_PERCENT = 20.0
REQUESTS = 5000
CUSTOMERS = 2500  # each twice: stickiness seen, share not hostage to a few customers
CANDIDATES = 10
FIRST_DRIVER = 1001  # the small data has drivers 1001..1040
FRESH = shutil.ignore_patterns("registry.db", "online_store.db")
# Every process of the test shares two cores: stage timeouts that a CPU stall cannot reach, so
# a 504 here would mean a real failure (as from the shadow), not the box.
SLOW_BOX = {
    "BERTH_TRANSFORMER_FEATURE_TIMEOUT_MS": "3000",
    "BERTH_TRANSFORMER_PREDICTOR_TIMEOUT_MS": "5000",
}


@dataclass
class Rollout:
    stack: LocalStack
    ep: Endpoints
    primary_version: str
    canary_version: str
    on: ServerProcess  # primary + shadow
    off: ServerProcess  # primary only
    on_url: str
    off_url: str


def body(customer: int, seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    drivers = rng.choice(40, CANDIDATES, replace=False) + FIRST_DRIVER
    return {
        "instances": [
            {
                "customer_id": customer,
                "driver_id": int(d),
                "trip_distance_km": float(round(rng.uniform(0.5, 30.0), 1)),
                "pickup_hour": int(rng.integers(0, 24)),
            }
            for d in drivers
        ]
    }


@dataclass
class Answer:
    status: int
    version: str
    header: str
    predictions: list[float]
    seconds: float
    request_id: str = ""


async def send(url: str, bodies: list[dict[str, Any]], in_flight: int = 16) -> list[Answer]:
    """POST each body (V1) with at most ``in_flight`` outstanding; answers in input order."""
    answers: list[Answer | None] = [None] * len(bodies)
    gate = asyncio.Semaphore(in_flight)
    connector = aiohttp.TCPConnector(limit=in_flight)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(i: int) -> None:
            async with gate:
                started = time.perf_counter()
                try:
                    async with session.post(url, json=bodies[i]) as resp:
                        payload = await resp.json(content_type=None)
                        elapsed = time.perf_counter() - started
                        answers[i] = Answer(
                            resp.status,
                            str(payload.get("model_version", "")),
                            resp.headers.get("x-model-version", ""),
                            payload.get("predictions", []),
                            elapsed,
                            resp.headers.get("x-request-id", ""),
                        )
                except (aiohttp.ClientError, TimeoutError) as exc:
                    answers[i] = Answer(599, "", "", [], time.perf_counter() - started)
                    print(f"client error: {exc!r}")

        await asyncio.gather(*(one(i) for i in range(len(bodies))))
    return [a for a in answers if a is not None]


def metric_lines(http: str, name: str) -> dict[str, float]:
    """``{series: value}`` of the series whose name starts with ``name``."""
    found = scrape(http, timeout_s=10).by_series()
    return {key: value for key, value in found.items() if key.startswith(name)}


def transformer(ep: Endpoints, repo: Path, artifact: Path, env: dict[str, str]) -> ServerProcess:
    """Not started: a transformer on its own ports in front of the stack's primary predictor,
    over the default hop (REST V2), as LocalStack's."""
    settings = {
        **feature_env(repo, artifact, store_yaml=repo / "feature_store.yaml"),
        "BERTH_TRANSFORMER_FEATURE_SERVICE": ep.feature_service,
        "BERTH_TRANSFORMER_DRIFT_WINDOW": "0",
        **env,
    }
    return transformer_process(
        ep.model, ep.predictor_http, Ports.free(), env=settings, predictor_protocol="v2"
    )


def http_of(proc: ServerProcess) -> str:
    return proc.ready_url.split("/v2/")[0]


@pytest.fixture(scope="module")
def second_artifact(built: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Same FeatureService and training set, another training seed and version: other weights
    (the small build's steps rerun from export on a copy of its work dir)."""
    from berth.cli import main
    from berth.modelbuild.train import train_model

    repo, artifact = built
    out = tmp_path_factory.mktemp("canary") / "artifact"
    workdir = Path(shutil.copytree(artifact.with_name(artifact.name + ".build"), f"{out}.build"))
    train_model(workdir, seed=7)
    steps = [a for step in ("export", "quantize", "evaluate", "package") for a in ("--step", step)]
    args = ["build", "--repo", str(repo), "--output", str(out), "--version", "v1-canary"]
    assert main([*args, *steps]) == 0
    return out


@pytest.fixture(scope="module")
def rollout(
    built: tuple[Path, Path],
    second_artifact: Path,
    redis_server: RedisServer,
    tmp_path_factory: pytest.TempPathFactory,
    module_processes: Stack,
) -> Iterator[Rollout]:
    from berth.artifact import read_metadata

    repo_src, artifact = built
    root = tmp_path_factory.mktemp("rollout")
    repo = Path(shutil.copytree(repo_src, root / "repo", ignore=FRESH))
    saved = {k: os.environ.get(k) for k in (*SLOW_BOX, "REDIS_CONNECTION_STRING")}
    os.environ.update(SLOW_BOX)
    stack = LocalStack(
        artifact=artifact,
        repo=repo,
        port=free_port(),
        grpc_port=free_port(),
        redis_url=redis_server.url,
        canary=second_artifact,
        canary_percent=CANARY_PERCENT,
        shadow=second_artifact,
        logs=root / "logs",
    )
    try:
        ep = stack.start()
        assert ep.canary and ep.shadow
        redis_env = {"REDIS_CONNECTION_STRING": os.environ["REDIS_CONNECTION_STRING"]}
        shadowed = {**redis_env, "BERTH_TRANSFORMER_SHADOW_HOST": ep.shadow}
        on = module_processes.start("on", transformer(ep, repo, artifact, shadowed))
        off = module_processes.start("off", transformer(ep, repo, artifact, redis_env))
        module_processes.wait_ready(120)
        yield Rollout(
            stack,
            ep,
            read_metadata(artifact).version,
            read_metadata(second_artifact).version,
            on,
            off,
            f"{http_of(on)}/v1/models/{ep.model}:predict",
            f"{http_of(off)}/v1/models/{ep.model}:predict",
        )
    finally:
        module_processes.stop()
        stack.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def test_canary_share_and_stickiness_over_5000_requests(rollout: Rollout) -> None:
    customers = [1 + i % CUSTOMERS for i in range(REQUESTS)]
    bodies = [body(c, i) for i, c in enumerate(customers)]
    url = f"{rollout.ep.http}/v1/models/{rollout.ep.model}:predict"
    started = time.perf_counter()
    answers = asyncio.run(send(url, bodies, 8))
    elapsed = time.perf_counter() - started
    assert [a.status for a in answers] == [200] * REQUESTS
    assert all(a.header == a.version for a in answers)
    versions = [a.version for a in answers]
    assert set(versions) == {rollout.primary_version, rollout.canary_version}
    share = versions.count(rollout.canary_version) / REQUESTS
    by_customer: dict[int, set[str]] = {}
    for customer, version in zip(customers, versions, strict=True):
        by_customer.setdefault(customer, set()).add(version)
    print(
        f"\ncanary share {share:.2%} over {REQUESTS} requests ({CUSTOMERS} customers) "
        f"in {elapsed:.1f}s ({REQUESTS / elapsed:.0f} rps)"
    )
    assert abs(share - CANARY_PERCENT / 100) <= 0.02
    assert all(len(v) == 1 for v in by_customer.values()), "a customer saw two versions"
    routed = metric_lines(rollout.ep.http, "berth_transformer_routed_total{")
    canary_key = next(k for k in routed if 'target="canary"' in k)
    assert rollout.canary_version in canary_key
    assert routed[canary_key] >= versions.count(rollout.canary_version)


def test_a_named_version_answers_whatever_the_customers_bucket(rollout: Rollout) -> None:
    """V2 ``/versions/<v>/infer`` (the path the Open Inference Protocol describes) and gRPC
    ``model_version`` reach that version, primary or canary; another version is a 404."""
    import grpc
    from kserve.protocol.grpc.grpc_predict_v2_pb2_grpc import GRPCInferenceServiceStub

    from berth.loadtest import grpc_request, v2_inputs

    base = f"{rollout.ep.http}/v2/models/{rollout.ep.model}"
    with urllib.request.urlopen(base, timeout=10) as resp:
        served = json.loads(resp.read())["versions"]
    assert served == [rollout.primary_version, rollout.canary_version]
    rows = body(7, 0)["instances"]
    for version in served:
        for customer in range(1, 41):  # customers of both buckets
            one = [{**r, "customer_id": customer} for r in rows]
            request = urllib.request.Request(
                f"{base}/versions/{version}/infer",
                data=json.dumps({"inputs": v2_inputs(one)}).encode(),
                headers={"content-type": "application/json"},
            )
            with urllib.request.urlopen(request, timeout=10) as resp:
                assert json.loads(resp.read())["model_version"] == version
        with grpc.insecure_channel(rollout.ep.grpc) as channel:
            message = grpc_request(rows, rollout.ep.model)
            message.model_version = version
            reply = GRPCInferenceServiceStub(channel).ModelInfer(message, timeout=10)
        assert reply.model_version == version
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(
            urllib.request.Request(
                f"{base}/versions/v0/infer",
                data=json.dumps({"inputs": v2_inputs(rows)}).encode(),
                headers={"content-type": "application/json"},
            ),
            timeout=10,
        )
    assert missing.value.code == 404 and "v0" in json.loads(missing.value.read())["error"]


def test_shadow_on_answers_identical_and_shadow_off_the_primary_path(rollout: Rollout) -> None:
    """Same 2,000 requests to the transformer with the shadow and to the one without, in
    interleaved batches of 100 (2 in flight: below saturation of this box, where latency
    measures the shadow's cost, not a queue), so load and machine state are shared.

    The issue's bound (p99 +10% at most) is a performance figure: it is measured in
    ``python -m benchmarks compare`` (``shadow.p99_on_over_off``, pooled over alternating
    open-loop points), not asserted here. Here client, three transformers and three predictors
    share two cores; with the transformer gathering shadow copies for 20 ms per call and the
    shadow predictor niced (as ``berth up --shadow`` runs it), p50 is unchanged and p99 moved
    by +12% in one run, inside the run-to-run spread of the shadow-off side itself. The test
    prints both and asserts what catches a shadow in the primary's path (a serial shadow call,
    a blocking queue): ``p99_on <= 1.5 * p99_off + 5 ms``.
    """
    IN_FLIGHT = 2
    bodies = [body(1 + i % 300, 10_000 + i) for i in range(2000)]
    asyncio.run(send(rollout.on_url, bodies[:200], IN_FLIGHT))  # warm both
    asyncio.run(send(rollout.off_url, bodies[:200], IN_FLIGHT))
    on: list[Answer] = []
    off: list[Answer] = []
    for k in range(0, len(bodies), 100):
        batch = bodies[k : k + 100]
        first, second = (
            (rollout.on_url, rollout.off_url) if k % 200 else (rollout.off_url, rollout.on_url)
        )
        a = asyncio.run(send(first, batch, IN_FLIGHT))
        b = asyncio.run(send(second, batch, IN_FLIGHT))
        (on if first == rollout.on_url else off).extend(a)
        (off if first == rollout.on_url else on).extend(b)
    assert all(a.status == 200 for a in on + off)
    assert [a.predictions for a in on] == [a.predictions for a in off]
    assert {a.version for a in on} == {rollout.primary_version}
    p99_on = float(np.percentile([a.seconds for a in on], 99))
    p99_off = float(np.percentile([a.seconds for a in off], 99))
    p50_on = float(np.percentile([a.seconds for a in on], 50))
    p50_off = float(np.percentile([a.seconds for a in off], 50))
    time.sleep(1.0)  # let the shadow queue drain
    deltas = metric_lines(http_of(rollout.on), "berth_transformer_shadow_delta")
    count = deltas.get("berth_transformer_shadow_delta_count", 0.0)
    dropped = metric_lines(http_of(rollout.on), "berth_transformer_shadow_dropped_total")
    print(
        f"\nprimary p99 shadow off {p99_off * 1000:.2f} ms, on {p99_on * 1000:.2f} ms "
        f"({p99_on / p99_off - 1:+.1%}); p50 off {p50_off * 1000:.2f} ms, on "
        f"{p50_on * 1000:.2f} ms; shadow delta observations {count:.0f} "
        f"(sum {deltas.get('berth_transformer_shadow_delta_sum', 0.0):.3f}), dropped {dropped}"
    )
    assert count > 0
    assert deltas.get("berth_transformer_shadow_delta_sum", 0.0) > 0  # other weights
    assert p99_on <= 1.5 * p99_off + 0.005
    # Each mirrored request is in the logs under its own request id, with its deltas.
    logged: dict[str, dict[str, Any]] = {}
    for line in rollout.on.log().splitlines():
        if '"shadow compared"' in line:
            for entry in json.loads(line)["requests"]:
                logged[entry["request_id"]] = entry
    ids = {a.request_id for a in on}
    assert "" not in ids and len(logged.keys() & ids) >= 0.99 * len(ids)
    some = logged[next(iter(logged.keys() & ids))]
    assert some["rows"] == CANDIDATES and some["max_delta"] >= some["mean_delta"] >= 0


def test_killing_the_shadow_causes_no_primary_errors(rollout: Rollout) -> None:
    bodies = [body(1 + i % 500, 20_000 + i) for i in range(1500)]
    shadow = rollout.stack.process("shadow")
    assert shadow is not None and shadow.proc is not None
    errors_before = metric_lines(http_of(rollout.on), "berth_transformer_shadow_errors_total")

    async def run() -> tuple[list[Answer], list[Answer]]:
        async def kill_soon() -> None:
            await asyncio.sleep(0.5)
            assert shadow.proc is not None
            shadow.proc.kill()

        stack_url = f"{rollout.ep.http}/v1/models/{rollout.ep.model}:predict"
        results = await asyncio.gather(
            send(rollout.on_url, bodies, 4), send(stack_url, bodies, 4), kill_soon()
        )
        return results[0], results[1]

    on, stack = asyncio.run(run())
    assert shadow.proc.poll() is not None, "the shadow was still running at the end"
    statuses = [a.status for a in on + stack]
    print(f"\nshadow killed mid-run: {len(statuses)} primary answers, statuses {set(statuses)}")
    assert statuses == [200] * len(statuses)
    time.sleep(1.0)
    errors = metric_lines(http_of(rollout.on), "berth_transformer_shadow_errors_total")
    assert sum(errors.values()) > sum(errors_before.values())
