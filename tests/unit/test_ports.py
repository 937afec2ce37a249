"""``free_port`` never hands one port to two servers, and a gRPC server never shares its port.

CI failed once on this: ``berth up``'s predictor was given the port the test had already chosen
for the transformer's gRPC (the kernel offers a port again until someone binds it), the
predictor's REST server could not bind, and its readiness probe read the transformer's HTTP/2
SETTINGS frame (``http.client.BadStatusLine``)."""

from __future__ import annotations

import asyncio
import socket

import pytest

from berth.serving import kserve_compat as compat
from berth.serving.grpc_server import BerthGrpcServer
from berth.stack import ports
from berth.stack.ports import LOOPBACK, Ports, claim, free_port


def test_a_port_the_kernel_offers_twice_is_handed_out_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    offered = iter([40001, 40001, 40003])
    monkeypatch.setattr(ports, "_kernel_pick", lambda: next(offered))
    monkeypatch.setattr(ports, "_handed_out", {})
    assert [free_port(), free_port()] == [40001, 40003]


def test_a_claimed_port_is_not_handed_out(monkeypatch: pytest.MonkeyPatch) -> None:
    offered = iter([50001, 40003])
    monkeypatch.setattr(ports, "_kernel_pick", lambda: next(offered))
    monkeypatch.setattr(ports, "_handed_out", {})
    claim(50001)  # a Redis Cluster node's bus port, bound later by redis-server
    assert free_port() == 40003


def test_the_memory_is_bounded_and_forgets_the_oldest(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ports, "_handed_out", {})
    monkeypatch.setattr(ports, "REMEMBERED", 3)
    for port in (1, 2, 3, 4):
        claim(port)
    assert list(ports._handed_out) == [2, 3, 4]


def test_a_hop_targets_the_grpc_port_or_the_rest_url() -> None:
    ports = Ports(8080, 8081)
    assert ports.hop_target("grpc-v2") == f"{LOOPBACK}:8081"
    assert ports.hop_target("v2") == ports.hop_target("v1") == f"http://{LOOPBACK}:8080"


def test_many_real_picks_never_repeat() -> None:
    # The kernel alone repeats a port within a few hundred picks on a stock Linux port range
    # (2 repeats in 200, 38 in 1000, measured on the development machine).
    picked = [free_port() for _ in range(600)]
    assert len(set(picked)) == len(picked)


async def _start_grpc_on(port: int) -> BaseException | None:
    server = BerthGrpcServer(
        port,
        None,
        None,
        kwargs=compat.server_args(),
        host=LOOPBACK,
        ready=lambda: True,
        reflection_on=False,
    )
    task = asyncio.get_running_loop().create_task(server.start(1))
    done, _ = await asyncio.wait({task}, timeout=20)
    if not done:  # it started on a port another server listens on
        await server._server.stop(None)
        task.cancel()
        return None
    return task.exception()


def test_a_grpc_server_refuses_a_port_another_listener_holds() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        # As another gRPC server holds its port: gRPC sets SO_REUSEPORT unless told not to.
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        holder.bind((LOOPBACK, 0))
        holder.listen()
        error = asyncio.run(_start_grpc_on(holder.getsockname()[1]))
    assert error is not None, "the gRPC server shared a port another listener holds"
    assert "bind" in str(error).lower(), error
