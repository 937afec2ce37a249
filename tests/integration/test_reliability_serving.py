"""Overload, deadlines, dependency outages and SIGTERM with real processes under real load.

One stack for the module (redis-server, ``python -m berth_predictor``, ``python -m
berth_transformer``, gRPC V2 between them, all loopback). Saturation is measured in the test
(a short closed-loop burst): the machine is small and shared, so no rate is hard-coded. Tests
that kill processes run last.
"""

from __future__ import annotations

import asyncio
import collections
import http.client
import json
import re
import signal
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import grpc
import numpy as np
import pytest
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.grpc.grpc_predict_v2_pb2_grpc import GRPCInferenceServiceStub

from berth.loadtest import ERROR, Run, closed_loop, instances, open_loop
from tests.support.serving import ServingStack

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DEADLINE_S = 1.0
FEATURE_TIMEOUT_S = 0.5
GRACE_S = 10.0
BODY = instances(5)
LOG = print  # the numbers the issue asks for, visible with -s / in -ra output on failure


@pytest.fixture(scope="module")
def stack(serving_stack: Any) -> Iterator[ServingStack]:
    with serving_stack(
        "reliability",
        transformer_env={
            # 32: with 16, a 60 ms stall of this shared 2-core box at the Redis test's ~280 rps
            # shed 429s in the outage; with the default 64, 2x saturation queues near 2 s.
            "BERTH_TRANSFORMER_MAX_INFLIGHT": "32",
            "BERTH_TRANSFORMER_DEADLINE_MS": str(int(DEADLINE_S * 1000)),
            "BERTH_TRANSFORMER_FEATURE_TIMEOUT_MS": str(int(FEATURE_TIMEOUT_S * 1000)),
            "BERTH_TRANSFORMER_PREDICTOR_TIMEOUT_MS": "800",
            "BERTH_TRANSFORMER_SHUTDOWN_GRACE_S": str(GRACE_S),
        },
        predictor_env={"BERTH_PREDICTOR_SHUTDOWN_GRACE_S": str(GRACE_S)},
    ) as s:
        yield s


@pytest.fixture(scope="module")
def saturation(stack: ServingStack) -> float:
    """Successful requests per second the stack sustains here, now (closed loop, 3 s)."""
    asyncio.run(closed_loop(stack.infer_url, BODY, 4, 1.0))  # warm connections and caches
    run = asyncio.run(closed_loop(stack.infer_url, BODY, 8, 3.0))
    assert run.count(200) == len(run.samples), run.statuses()
    LOG(f"saturation: {run.rate():.0f} rps (p50 {run.latency(0.5) * 1000:.1f} ms)")
    return run.rate()


def _summary(name: str, run: Run) -> str:
    return (
        f"{name}: sent {len(run.samples)} statuses {run.statuses()} "
        f"p50 {run.latency(0.5) * 1000:.0f} ms p99 {run.latency(0.99) * 1000:.0f} ms "
        f"max {run.latency(1.0) * 1000:.0f} ms"
    )


def _ready(url: str) -> int:
    try:
        with urllib.request.urlopen(f"{url}/v2/health/ready", timeout=2) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as err:
        return err.code
    except OSError:
        return ERROR


def _wait_200(stack: ServingStack, timeout_s: float = 30.0) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        run = asyncio.run(closed_loop(stack.infer_url, BODY, 1, 0.2, timeout_s=2))
        if run.samples and all(s.status == 200 for s in run.samples):
            return time.monotonic() - started
        time.sleep(0.1)
    raise AssertionError("no recovery")


def test_twice_saturation_for_20s_every_request_answered_in_time(
    stack: ServingStack, saturation: float
) -> None:
    run = asyncio.run(
        open_loop(stack.infer_url, BODY, 2 * saturation, 20.0, timeout_s=DEADLINE_S + 4)
    )
    LOG(_summary(f"2x saturation ({2 * saturation:.0f} rps, 20 s)", run))
    statuses = run.statuses()
    assert set(statuses) <= {200, 429, 503}, statuses  # nothing accepted failed, no 5xx/504
    assert run.count(200) > 0.5 * saturation * 20  # still serving close to capacity
    assert run.count(429) > 0  # it did shed
    # Every answer within the deadline (+1 s for this loaded 2-core machine's client side).
    assert run.latency(1.0) < DEADLINE_S + 1.0, _summary("late", run)


def test_redis_stopped_5s_errors_only_in_the_window_then_full_recovery(
    stack: ServingStack, saturation: float
) -> None:
    marks: dict[str, float] = {}
    stack.save_redis()  # a restart on the same port comes back with the features
    pid = stack.transformer.proc.pid  # type: ignore[union-attr]

    def stop() -> None:
        marks["stop"] = time.monotonic()
        stack.redis.stop()

    def start() -> None:
        stack.redis.start()
        marks["start"] = time.monotonic()

    rate = max(20.0, 0.3 * saturation)
    run = asyncio.run(
        open_loop(
            stack.infer_url,
            BODY,
            rate,
            12.0,
            timeout_s=DEADLINE_S + 4,
            events={2.0: stop, 7.0: start},
        )
    )
    LOG(_summary(f"redis outage ({rate:.0f} rps)", run))
    failed = [s for s in run.samples if s.status != 200]
    assert failed, "the outage did not show"
    first, last = min(s.sent for s in failed), max(s.sent + s.latency for s in failed)
    LOG(
        f"redis outage: stopped {marks['start'] - marks['stop']:.1f} s; errors from "
        f"{first - marks['stop']:+.2f} s to {last - marks['start']:+.2f} s after restart; "
        f"{len(failed)} failed: {sorted({s.status for s in failed})}"
    )
    why = _logged_errors(stack.transformer.log())  # on failure: what the transformer saw
    assert {s.status for s in failed} <= {503, 504}, why
    assert first >= marks["stop"] - 0.05, why
    assert last <= marks["start"] + FEATURE_TIMEOUT_S + 1.0, why  # one timeout (+ slack)
    after = [s for s in run.samples if s.sent > marks["start"] + FEATURE_TIMEOUT_S + 1.0]
    assert after and all(s.status == 200 for s in after)
    assert stack.transformer.proc.pid == pid and stack.transformer.proc.poll() is None  # type: ignore[union-attr]


def _logged_errors(log: str) -> str:
    """The server's warning/error lines, counted by event and error."""
    counts: collections.Counter[str] = collections.Counter()
    for line in log.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("level") in ("warning", "error"):
            counts[f"{entry.get('event')}: {str(entry.get('error'))[:160]}"] += 1
    return "; ".join(f"{n}x {what}" for what, n in counts.most_common(8))


def test_oversized_payloads_are_413_and_resource_exhausted(stack: ServingStack) -> None:
    big = instances(1)
    big["pad"] = "x" * (2 * 1024 * 1024)  # over the default 1 MiB
    body = json.dumps(big).encode()
    # The server answers from Content-Length without reading the body: send the headers and
    # the first bytes only, so the client never races the server closing the connection.
    url = urllib.parse.urlsplit(stack.infer_url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    try:
        conn.putrequest("POST", url.path)
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body[:1024])
        response = conn.getresponse()
        status, raw = response.status, response.read()
    finally:
        conn.close()
    assert status == 413
    message = json.loads(raw)["error"]
    assert "exceeds the limit of 1048576 bytes (BERTH_TRANSFORMER_MAX_REQUEST_BYTES)" in message
    rows = 2 * 1024 * 1024 // 8
    tensor = pb.ModelInferRequest.InferInputTensor(name="driver_id", datatype="INT64", shape=[rows])
    request_pb = pb.ModelInferRequest(model_name="driver-ranking", inputs=[tensor])
    request_pb.raw_input_contents.append(np.full(rows, 1001, "<i8").tobytes())  # 2 MiB
    target = f"127.0.0.1:{stack.transformer_ports[1]}"
    with grpc.insecure_channel(target) as channel, pytest.raises(grpc.RpcError) as rpc:
        GRPCInferenceServiceStub(channel).ModelInfer(request_pb, timeout=10)
    assert rpc.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_predictor_killed_fast_503_then_recovery(stack: ServingStack, saturation: float) -> None:
    marks: dict[str, float] = {}

    def kill() -> None:
        stack.predictor.signal(signal.SIGKILL)  # type: ignore[union-attr]
        stack.predictor.proc.wait(5)  # type: ignore[union-attr]
        marks["kill"] = time.monotonic()

    rate = max(20.0, 0.3 * saturation)
    run = asyncio.run(
        open_loop(stack.infer_url, BODY, rate, 4.0, timeout_s=DEADLINE_S + 4, events={1.0: kill})
    )
    down = [s for s in run.samples if s.sent > marks["kill"] + 0.2]
    LOG(_summary(f"predictor killed ({rate:.0f} rps)", run))
    assert down and all(s.status == 503 for s in down), {s.status for s in down}
    p99 = sorted(s.latency for s in down)[int(0.99 * (len(down) - 1))]
    LOG(f"predictor down: {len(down)} answers 503, p99 {p99 * 1000:.1f} ms")
    assert p99 < 0.25  # fast, not a timeout
    stack.start_predictor().wait_ready(120)
    recovered = _wait_200(stack)
    LOG(f"predictor back: transformer answers 200 again after {recovered:.2f} s")


def _sigterm_under_load(
    stack: ServingStack, url: str, body: object, proc_name: str, rate: float
) -> None:
    proc = getattr(stack, proc_name)
    marks: dict[str, float] = {}

    def term() -> None:
        marks["term"] = time.monotonic()
        proc.signal(signal.SIGTERM)
        marks["ready_after_term"] = _ready(url.split("/v")[0])
        proc.proc.wait(GRACE_S + 5)
        marks["exit"] = time.monotonic()

    run = asyncio.run(open_loop(url, body, rate, 4.0, timeout_s=GRACE_S, events={1.5: term}))
    exit_s = marks["exit"] - marks["term"]
    before = [s for s in run.samples if s.sent < marks["term"]]
    inflight = [s for s in before if s.sent + s.latency > marks["term"]]
    after = [s for s in run.samples if s.sent >= marks["term"]]
    drained = re.findall(r'"inflight": (\d+), "grace_s"', proc.log())
    LOG(
        f"SIGTERM {proc_name} ({rate:.0f} rps): exit after {exit_s:.2f} s (grace {GRACE_S:.0f} s), "
        f"rc {proc.proc.returncode}; in flight at SIGTERM: {len(inflight)} (server counted "
        f"{drained}), sent before {len(before)} -> {Run(before).statuses()}; "
        f"sent after {len(after)} -> {Run(after).statuses()}; readiness after SIGTERM: "
        f"{marks['ready_after_term']}"
    )
    # 0 accepted requests failed: everything sent before SIGTERM got an answer. 429 is shed
    # load; 503 is the drain's refusal of a request that reached the server after SIGTERM
    # (an open-loop sender on a loaded 2-core box sends late) -- refused, never half-done.
    # A connection error or any other 5xx would be a failed request.
    assert {s.status for s in before} <= {200, 429, 503}, Run(before).statuses()
    assert any(s.status == 200 for s in inflight), "nothing was in flight at SIGTERM"
    assert marks["ready_after_term"] in (503, ERROR)
    # Refused, never half-done, and never reset: the drain closes its sockets only once the
    # requests stopped coming, so each one sent after SIGTERM got an answer too.
    assert {s.status for s in after} <= {200, 429, 503}, Run(after).statuses()
    assert exit_s < GRACE_S
    assert proc.proc.returncode == 0


def test_sigterm_transformer_during_load_drains_and_exits_in_grace(
    stack: ServingStack, saturation: float
) -> None:
    _sigterm_under_load(stack, stack.infer_url, BODY, "transformer", 1.5 * saturation)


def test_sigterm_predictor_during_load_drains_and_exits_in_grace(stack: ServingStack) -> None:
    # 1,000 rows of JSON per request (several ms each to parse and run): 800 rps is well above
    # its capacity, so requests are queued and in flight when SIGTERM comes (with 400 rows a
    # quiet machine kept up, and at times nothing was in flight).
    body = {"instances": [[0.5] * 20] * 1000}
    url = f"{stack.predictor_url}/v1/models/driver-ranking:predict"
    _sigterm_under_load(stack, url, body, "predictor", 800.0)
