"""Weighted canary routing, sticky per customer.

A customer goes to the canary when ``blake2b(customer_id) mod 10000 < percent * 100``: the
same customer always lands on the same model version (for a fixed percent), and raising the
percent only moves customers from primary to canary, never back. A request ranks drivers for
one customer; a request that mixes customers is routed by its first row. A request that names
a model version (V2 ``/versions/<v>/infer``, gRPC ``model_version``) goes to that version.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from berth.errors import ModelNotFoundError, quote
from berth_transformer import metrics
from berth_transformer.predictor_client import PredictorClient

PRIMARY = "primary"
CANARY = "canary"
BUCKETS = 10_000


def bucket(customer_id: int) -> int:
    """The customer's stable bucket in ``0 .. 9999`` (same on every replica and restart)."""
    digest = hashlib.blake2b(int(customer_id).to_bytes(8, "little", signed=True), digest_size=8)
    return int.from_bytes(digest.digest(), "little") % BUCKETS


def goes_to_canary(customer_id: int, percent: float) -> bool:
    return bucket(customer_id) < round(percent * 100)


@dataclass
class Route:
    """What one request was routed to: primary until the router picks, then the version that
    answered (read in ``__call__`` for the per-version metrics)."""

    target: str = PRIMARY
    model_version: str = ""


def observe(route: Route, outcome: str, elapsed_s: float) -> None:
    """Per-version request count and latency (the rollout analyzer's error rate and p99)."""
    version = route.model_version or "unknown"
    metrics.MODEL_REQUESTS.labels(version, outcome).inc()
    metrics.MODEL_REQUEST_SECONDS.labels(version, outcome).observe(elapsed_s)


class Router:
    """The optional canary client and its share, with the model version of each target (the
    primary client stays the transformer's own)."""

    def __init__(self, canary: PredictorClient | None = None, percent: float = 0.0) -> None:
        self.canary, self.percent = canary, percent
        self.versions = {PRIMARY: "", CANARY: ""}

    def _targets(self) -> tuple[str, ...]:
        return (PRIMARY, CANARY) if self.canary is not None else (PRIMARY,)

    def served(self) -> list[str]:
        """The model versions requests can reach: the primary's, and the canary's if any."""
        return [self.versions[t] for t in self._targets() if self.versions[t]]

    def target_of(self, model_name: str, version: str) -> str:
        """The target serving ``version``; 404 (naming the versions served) for another."""
        for target in self._targets():
            if version and self.versions[target] == version:
                return target
        raise ModelNotFoundError(
            f"model {quote(model_name)} has no version {quote(version)}; it serves "
            + ", ".join(repr(v) for v in self.served())
        )

    def pick(self, customer_id: int, pinned: str | None = None) -> str:
        """``pinned`` (a target a request asked for by version) wins over the bucket."""
        if pinned is not None:
            return pinned
        if self.canary is not None and goes_to_canary(customer_id, self.percent):
            return CANARY
        return PRIMARY

    def route(self, route: Route, customer_id: int, pinned: str | None = None) -> None:
        """Pick the target for ``customer_id`` (or ``pinned``) and record it on ``route``."""
        target = self.pick(customer_id, pinned)
        route.target, route.model_version = target, self.versions[target]

    def answered(self, route: Route, model_version: str) -> None:
        if model_version:
            route.model_version = model_version
        metrics.ROUTED.labels(route.target, route.model_version or "unknown").inc()
