"""What one open-loop point is (:class:`LoadSpec`), what it measured (:class:`LoadResult`),
and the loopback-only rule for its target."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from benchmarks import payloads

LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


@dataclass(frozen=True)
class LoadSpec:
    """One point: ``rate`` requests/s of ``protocol`` to ``target`` for ``duration_s``."""

    protocol: str  # "v1" | "v2" | "grpc-v2" | "v2-binary" (REST V2, binary tensor extension)
    target: str  # REST: http://127.0.0.1:PORT; gRPC: 127.0.0.1:PORT
    rate: float
    duration_s: float
    arrivals: str = "constant"  # "constant" | "poisson"
    warmup_s: float = 0.5  # sent at the same rate first, not counted
    candidates: int = 10  # rows per request
    payload: str = "ranking"  # "ranking" (transformer) | "features" (predictor alone, V2 only)
    model: str = payloads.MODEL
    max_outstanding: int = 512
    timeout_s: float = 2.0
    seed: int = 0
    keep_latencies: bool = False  # also return every measured latency (for pooling points)
    allow_remote: bool = False  # a target off this machine (``--allow-remote``: your own stack)
    drivers: tuple[int, int] = (1001, 1120)
    customers: tuple[int, int] = (1, 400)
    label: str = ""

    def check(self) -> None:
        if self.protocol not in payloads.PROTOCOLS:
            raise ValueError(f"protocol must be one of {payloads.PROTOCOLS}, got {self.protocol}")
        if self.payload not in ("ranking", "features"):
            raise ValueError(f"payload must be ranking or features, got {self.payload}")
        if self.payload == "features" and self.protocol == "v1":
            raise ValueError("the predictor alone speaks V2 (protocol v2 or grpc-v2)")
        if self.protocol == "v2-binary" and self.payload != "features":
            raise ValueError("v2-binary sends model rows: use it with --payload features")
        if self.arrivals not in ("constant", "poisson"):
            raise ValueError(f"arrivals must be constant or poisson, got {self.arrivals}")
        if not (0 < self.rate <= 100_000):
            raise ValueError(f"rate must be in (0, 100000], got {self.rate}")
        if not (0 < self.duration_s <= 600) or not (0 <= self.warmup_s <= 60):
            raise ValueError("duration_s must be in (0, 600] and warmup_s in [0, 60]")
        refuse_remote(self.target, self.allow_remote)


class RemoteTargetRefused(ValueError):
    """A non-loopback target without ``allow_remote``: nothing was sent."""


def refuse_remote(target: str, allow_remote: bool) -> None:
    """Raise :class:`RemoteTargetRefused` for a target off this machine unless allowed."""
    host = _host(target)
    if allow_remote or _is_loopback(host):
        return
    raise RemoteTargetRefused(
        f"refusing to send load to {host or target!r}: not a loopback address (127.0.0.1, ::1, "
        "localhost). Load tests reach only this machine unless you say otherwise: pass "
        "--allow-remote to load a stack you own (nothing was sent)."
    )


@dataclass
class LoadResult:
    """What one point measured. Latencies in milliseconds, from the intended send time."""

    spec: dict[str, Any]
    sent: int = 0  # in the measured window
    ok: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    achieved_rps: float = 0.0
    latency_ms: dict[str, float] = field(default_factory=dict)
    service_ms: dict[str, float] = field(default_factory=dict)  # from the actual send
    send_lag_ms: dict[str, float] = field(default_factory=dict)  # actual - intended send
    completed_total: int = 0  # warm-up included: the denominator of CPU per request
    wall_s: float = 0.0
    latencies_ms: list[float] | None = None  # with spec.keep_latencies

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


def _is_loopback(host: str) -> bool:
    if host in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback  # all of 127.0.0.0/8
    except ValueError:
        return False


def _host(target: str) -> str:
    if "://" in target:
        return urlparse(target).hostname or ""
    host = target.rsplit(":", 1)[0]
    return host.strip("[]")
