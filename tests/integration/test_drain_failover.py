"""A predictor SIGTERM under load moves the traffic to the other replica.

Two real predictors behind a loopback TCP proxy (the stand-in for an L4 Kubernetes Service:
one backend per new connection, round robin; the endpoint of the predictor being stopped leaves
it as the signal is sent, as a Service drops a terminating pod's endpoint -- shutdownDelaySeconds
0, propagation taken as instant -- and a backend that refuses the connection is skipped), one
transformer whose hop (REST or gRPC) goes through the proxy. SIGTERM the predictor the
transformer's connection is on: it sends GOAWAY at once (gRPC) and answers new work 503 with
``Connection: close`` (REST), the transformer's next calls open a new connection (to the live
replica), a call caught by the drain is retried once on a fresh channel (gRPC) or a new
connection (REST, never a pooled one that may be to the draining replica too), and at most 0.1%
of requests fail. The drained predictor exits within its grace, and an idle REST keep-alive
connection to it is closed as the drain starts.
"""

from __future__ import annotations

import asyncio
import http.client
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from berth.loadtest import Run, instances, open_loop
from berth.scrape import scrape
from berth.stack import (
    LOOPBACK,
    Ports,
    ServerProcess,
    Stack,
    feature_env,
    free_port,
    predictor_process,
    transformer_process,
)
from tests.support.serving import ServingStack

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MODEL = "driver-ranking"
GRACE_S = 8.0
SHORT_GRACE_S = 4.0  # the transformer's, for the exit-bound test
LOG = print


class TcpProxy:
    """A loopback L4 balancer on its own event loop thread (see the module docstring)."""

    def __init__(self, backends: list[tuple[str, int]]) -> None:
        self.backends = backends
        self.port = free_port()
        self.picked: list[tuple[str, int]] = []  # the backend of each accepted connection
        self._next = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def __enter__(self) -> TcpProxy:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._accept, LOOPBACK, self.port), self._loop
        ).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def remove(self, backend: tuple[str, int]) -> None:
        """Its endpoint leaves the Service: no new connection goes to it (open ones stay)."""
        self._loop.call_soon_threadsafe(self.backends.remove, backend)

    async def _close(self) -> None:
        self._server.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for _ in range(len(self.backends)):
            backend = self.backends[self._next % len(self.backends)]
            self._next += 1
            try:
                up_reader, up_writer = await asyncio.open_connection(*backend)
            except OSError:
                continue  # not listening: its endpoint has left the Service
            self.picked.append(backend)
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
            return
        writer.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        writer.close()


@pytest.fixture
def stack(serving_stack: Any) -> Iterator[ServingStack]:
    """A fresh stack per test: each one SIGTERMs a server of it."""
    env = {"BERTH_PREDICTOR_SHUTDOWN_GRACE_S": str(GRACE_S)}
    transformer_env = {"BERTH_TRANSFORMER_SHUTDOWN_GRACE_S": str(SHORT_GRACE_S)}
    with serving_stack("drain-failover", predictor_env=env, transformer_env=transformer_env) as s:
        yield s


def test_exit_within_the_grace_while_clients_never_stop_sending(stack: ServingStack) -> None:
    """Requests keep coming past the grace (the drain never sees a quiet moment): the
    process still exits within SHUTDOWN_GRACE_S of the signal."""
    proc = stack.transformer
    assert proc is not None and proc.proc is not None
    marks: dict[str, float] = {}

    def term() -> None:
        marks["term"] = time.monotonic()
        proc.signal(signal.SIGTERM)
        assert proc.proc is not None
        proc.proc.wait(SHORT_GRACE_S + 10)
        marks["exit"] = time.monotonic() - marks["term"]

    seconds = SHORT_GRACE_S + 3.0
    run = asyncio.run(
        open_loop(stack.infer_url, instances(5), 50, seconds, timeout_s=5, events={0.5: term})
    )
    LOG(
        f"transformer SIGTERM under endless load: exit after {marks['exit']:.2f} s "
        f"(grace {SHORT_GRACE_S:.0f} s), rc {proc.proc.returncode}, statuses {run.statuses()}"
    )
    assert marks["exit"] < SHORT_GRACE_S


@pytest.mark.parametrize("protocol", ["v2", "grpc-v2"])  # the transformer's hop: REST, gRPC
def test_predictor_sigterm_behind_a_service_costs_at_most_0_1_percent(
    stack: ServingStack, processes: Stack, protocol: str
) -> None:
    second_ports = Ports.free()
    grace = {"BERTH_PREDICTOR_SHUTDOWN_GRACE_S": str(GRACE_S)}
    log = processes.log_path("predictor-2")
    second = predictor_process(MODEL, stack.artifact, second_ports, env=grace, log_path=log)
    processes.start("predictor-2", second).wait_ready(120)
    first = stack.predictor
    assert first is not None
    port_of = (lambda p: p.grpc) if protocol == "grpc-v2" else (lambda p: p.http)  # the hop's
    hop_ports = {port_of(stack.predictor_ports): first, port_of(second_ports): second}
    with TcpProxy([(LOOPBACK, port) for port in hop_ports]) as proxy:
        env = feature_env(stack.repo, stack.artifact, stack.redis.connection_string)
        log = processes.log_path(f"transformer-proxied-{protocol}")
        proxied = transformer_process(
            MODEL,
            f"{LOOPBACK}:{proxy.port}",
            Ports.free(),
            env=env,
            log_path=log,
            predictor_protocol=protocol,
        )
        transformer = processes.start("transformer-proxied", proxied).wait_ready(120)
        _failover(stack, transformer, proxy, hop_ports)


def _failover(
    stack: ServingStack,
    transformer: ServerProcess,
    proxy: TcpProxy,
    hop_ports: dict[int, ServerProcess],
) -> None:
    url = f"http://{LOOPBACK}:{transformer.ready_url.split(':')[2].split('/')[0]}"
    infer = f"{url}/v1/models/{MODEL}:predict"
    body = instances(5)
    warm = asyncio.run(open_loop(infer, body, 50, 1.0))
    assert warm.count(200) == len(warm.samples), warm.statuses()
    backend = proxy.picked[-1]
    active = hop_ports[backend[1]]  # the predictor the transformer's channel is on
    rest_port = int(active.ready_url.split(":")[2].split("/")[0])
    idle = http.client.HTTPConnection(LOOPBACK, rest_port, timeout=5)
    idle.request("GET", f"/v2/models/{MODEL}/ready")
    idle.getresponse().read()  # now an idle keep-alive connection
    marks: dict[str, float] = {}

    def term() -> None:
        marks["term"] = time.monotonic()
        proxy.remove(backend)  # the pod is terminating: shutdownDelaySeconds 0, propagation instant
        active.signal(signal.SIGTERM)
        assert idle.sock is not None
        idle.sock.settimeout(3)
        try:
            closed = idle.sock.recv(1) == b""
        except (TimeoutError, OSError):
            closed = False
        marks["idle_closed"] = time.monotonic() - marks["term"] if closed else -1.0
        assert active.proc is not None
        active.proc.wait(GRACE_S + 5)
        marks["exit"] = time.monotonic() - marks["term"]

    rate, seconds = 100.0, 8.0
    run = asyncio.run(open_loop(infer, body, rate, seconds, timeout_s=5, events={2.0: term}))
    failed = [s for s in run.samples if s.status != 200]
    share = len(failed) / len(run.samples)
    retries = scrape(url).total("berth_transformer_predictor_retries_total")
    LOG(
        f"predictor SIGTERM behind a proxy ({rate:.0f} rps, {seconds:.0f} s): "
        f"{len(run.samples)} sent, statuses {run.statuses()}, failed {share:.3%}; "
        f"retries {retries:.0f}; idle keep-alive closed after {marks['idle_closed']:.2f} s; "
        f"predictor exit after {marks['exit']:.2f} s (grace {GRACE_S:.0f} s), "
        f"connections through the proxy: {len(proxy.picked)}"
    )
    assert share <= 0.001, Run(failed).statuses()
    assert 0 <= marks["idle_closed"] < 1.0
    assert marks["exit"] < GRACE_S
    assert active.proc is not None and active.proc.returncode == 0
    after = [s for s in run.samples if s.sent > marks["term"] + 0.5]
    assert after and all(s.status == 200 for s in after)  # served by the other replica
