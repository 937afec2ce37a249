"""Loopback addresses and free ports for the local servers."""

from __future__ import annotations

import socket
from typing import NamedTuple

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """A TCP port on loopback that nothing listens on now (the kernel's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


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
