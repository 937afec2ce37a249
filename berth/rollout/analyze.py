"""Promote, hold or roll back: the canary's numbers against the primary's and the policy.

Rules, in order:

1. The canary served nothing: **hold** (nothing to judge).
2. Any threshold broken: **rollback**, whatever the sample size -- rolling back is the safe
   direction. Canary error rate above the primary's by more than ``max_error_rate_delta``;
   canary p99 / primary p99 above ``max_p99_ratio``; canary p99 above ``max_p99_ms``; p99 of
   the shadow deltas above ``max_shadow_delta_p99``.
3. Primary or canary below ``min_requests``: **hold**.
4. Otherwise: **promote**.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from berth.rollout.metrics import Observed, VersionStats
from berth.rollout.policy import RolloutPolicy

Action = Literal["promote", "hold", "rollback"]


@dataclass(frozen=True)
class Decision:
    """``reasons`` say why ``action``; ``passed`` lists the thresholds the canary met."""

    action: Action
    reasons: list[str]
    measurements: dict[str, Any] = field(default_factory=dict)
    passed: list[str] = field(default_factory=list)


def _pct(rate: float | None) -> str:
    return "n/a" if rate is None else f"{100 * rate:.2f}%"


def _ms(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{1000 * seconds:.1f} ms"


def _measure(stats: VersionStats | None) -> dict[str, Any]:
    if stats is None:
        return {"requests": 0, "errors": 0, "error_rate": None, "p99_ms": None}
    p99 = stats.p99_s
    return {
        "requests": stats.requests,
        "errors": stats.errors,
        "error_rate": stats.error_rate,
        "p99_ms": None if p99 is None else 1000 * p99,
    }


def decide(observed: Observed, policy: RolloutPolicy, primary: str, canary: str) -> Decision:
    """The decision for ``canary`` against ``primary`` (model versions) under ``policy``."""
    p, c = observed.versions.get(primary), observed.versions.get(canary)
    measurements = {
        "source": observed.source,
        "primary": {"version": primary, **_measure(p)},
        "canary": {"version": canary, **_measure(c)},
        "shadow": {"rows": observed.shadow_rows, "delta_p99": observed.shadow_delta_p99},
    }
    if c is None or c.requests <= 0:
        seen = ", ".join(sorted(v or "(no label)" for v in observed.versions)) or "none"
        reason = f"canary {canary!r} served no requests (versions seen: {seen})"
        return Decision("hold", [reason], measurements)

    breaches, passes = _thresholds(observed, policy, p, c)
    if breaches:
        return Decision("rollback", breaches, measurements, passes)
    p_requests = p.requests if p else 0.0
    if c.requests < policy.min_requests or p_requests < policy.min_requests:
        reason = (
            f"not enough requests: primary {p_requests:.0f}, canary {c.requests:.0f} "
            f"(min_requests {policy.min_requests} each)"
        )
        return Decision("hold", [reason], measurements, passes)
    return Decision("promote", ["every threshold met"], measurements, passes)


def _thresholds(
    observed: Observed, policy: RolloutPolicy, p: VersionStats | None, c: VersionStats
) -> tuple[list[str], list[str]]:
    breaches: list[str] = []
    passes: list[str] = []

    def check(broken: bool, text: str) -> None:
        (breaches if broken else passes).append(text)

    c_rate = c.error_rate or 0.0
    p_rate = p.error_rate if p is not None and p.error_rate is not None else 0.0
    delta = c_rate - p_rate
    check(
        delta > policy.max_error_rate_delta,
        f"error rate: canary {_pct(c_rate)} vs primary {_pct(p_rate)} "
        f"(+{100 * delta:.2f} pt, max +{100 * policy.max_error_rate_delta:.2f} pt)",
    )
    c_p99, p_p99 = c.p99_s, p.p99_s if p is not None else None
    if c_p99 is not None and p_p99:
        ratio = c_p99 / p_p99
        check(
            ratio > policy.max_p99_ratio,
            f"p99 latency: canary {_ms(c_p99)} vs primary {_ms(p_p99)} "
            f"(x{ratio:.2f}, max x{policy.max_p99_ratio:.2f})",
        )
    if policy.max_p99_ms is not None and c_p99 is not None:
        check(
            1000 * c_p99 > policy.max_p99_ms,
            f"p99 latency: canary {_ms(c_p99)} (max {policy.max_p99_ms:g} ms)",
        )
    shadow_p99 = observed.shadow_delta_p99
    if policy.max_shadow_delta_p99 is not None and shadow_p99 is not None:
        check(
            shadow_p99 > policy.max_shadow_delta_p99,
            f"shadow delta p99: {shadow_p99:.4g} over {observed.shadow_rows:.0f} rows "
            f"(max {policy.max_shadow_delta_p99:g})",
        )
    return breaches, passes
