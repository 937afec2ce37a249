"""Loopback addresses and free ports for the local servers."""

from __future__ import annotations

import socket
import threading
from typing import NamedTuple

LOOPBACK = "127.0.0.1"
REMEMBERED = 4096  # ports handed out lately that free_port will not hand out again

_handed_out: dict[int, None] = {}  # insertion-ordered: the oldest is forgotten first
_lock = threading.Lock()


def _kernel_pick() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def _remember(port: int) -> None:
    _handed_out.pop(port, None)
    _handed_out[port] = None
    while len(_handed_out) > REMEMBERED:
        del _handed_out[next(iter(_handed_out))]


def claim(port: int) -> None:
    """Remember ``port`` as handed out (a port a server will bind later, chosen another way:
    a Redis Cluster node's bus port, at its port + 10000)."""
    with _lock:
        _remember(port)


def free_port() -> int:
    """A TCP port on loopback that nothing listens on now (the kernel's pick) and that this
    process has not handed out lately.

    The kernel offers any port nothing has bound, and it offers the same one twice when the
    first taker has not bound it yet: a stack's ports are all chosen before its servers start,
    so one server could be given another's port (a predictor's REST port equal to its
    transformer's gRPC port: the readiness probe then read HTTP/2 frames).
    """
    while True:
        port = _kernel_pick()
        with _lock:
            if port not in _handed_out:
                _remember(port)
                return port


def port_is_free(port: int) -> bool:
    """Whether ``port`` on loopback can be bound now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
        return True


class Ports(NamedTuple):
    """A server's ``(http, grpc)`` ports on loopback."""

    http: int
    grpc: int

    @classmethod
    def free(cls) -> Ports:
        return cls(free_port(), free_port())

    @property
    def url(self) -> str:
        """Base URL of the REST port."""
        return f"http://{LOOPBACK}:{self.http}"

    @property
    def grpc_target(self) -> str:
        """``host:port`` of the gRPC port."""
        return f"{LOOPBACK}:{self.grpc}"

    def hop_target(self, hop: str) -> str:
        """Where a transformer calling this server over ``hop`` points: the gRPC port's
        ``host:port`` for ``grpc-v2``, the REST URL for the REST hops."""
        return self.grpc_target if hop == "grpc-v2" else self.url
