"""One look at the canary: each signal's verdict (pass, fail or inconclusive) and the look's.

Each signal votes only with ``min_samples`` on each side, and fails only when a one-sided
test at level ``alpha`` says the canary is worse AND the effect is larger than the policy
allows (a significant but tiny difference is not a regression; a large but noisy one is not
yet evidence). It passes when the canary is shown to be within the allowance; anything else
is inconclusive, and an inconclusive look never rolls back (see ``berth.rollout.looks``).

- **errors**: canary minus primary error rate, Newcombe's score interval. Fail: the lower
  bound > 0 and the difference > ``max_error_rate_delta``. Pass: the upper bound <= it.
- **latency**: Mann-Whitney U on the two request histograms (one-sided, canary slower), and
  the effect at p50 and at p99: canary - primary > ``min_effect_ms`` and canary / primary >
  ``max_p99_ratio``. Fail: U significant and some quantile's effect beyond both. Pass: no
  quantile beyond both.
- **latency limit** (``max_p99_ms``): a p99 above it means more than 1% of requests above it;
  a binomial test on the count of canary requests above the limit (Wilson bounds vs 1%).
- **shadow** (``max_shadow_delta_p99``): the same test on the rows whose |primary - shadow|
  delta is above the limit.

The look fails when any signal fails, passes when every signal passes, else is inconclusive.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from berth.rollout import stats as st
from berth.rollout.metrics import INF, Observed, VersionStats, histogram_quantile
from berth.rollout.policy import RolloutPolicy

Action = Literal["promote", "hold", "rollback"]
Verdict = Literal["pass", "fail", "inconclusive"]
TAIL = 0.01  # "p99 above X" = more than this share of observations above X


@dataclass(frozen=True)
class Check:
    """One signal's verdict, in words (``text``) and figures."""

    signal: str
    verdict: Verdict
    text: str
    figures: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Look:
    """The verdict of one look and the checks behind it."""

    verdict: Verdict
    checks: list[Check]
    measurements: dict[str, Any]

    def reasons(self, verdict: Verdict) -> list[str]:
        return [c.text for c in self.checks if c.verdict == verdict]


def _ms(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{1000 * seconds:.1f} ms"


def _measure(stats: VersionStats | None) -> dict[str, Any]:
    if stats is None:
        return {"requests": 0, "errors": 0, "error_rate": None, "p50_ms": None, "p99_ms": None}
    p50, p99 = histogram_quantile(0.5, stats.buckets), stats.p99_s
    return {
        "requests": stats.requests,
        "errors": stats.errors,
        "error_rate": stats.error_rate,
        "p50_ms": None if p50 is None else 1000 * p50,
        "p99_ms": None if p99 is None else 1000 * p99,
    }


def judge(observed: Observed, policy: RolloutPolicy, primary: str, canary: str) -> Look:
    """One look at ``canary`` against ``primary`` (model versions) under ``policy``."""
    p = observed.versions.get(primary) or VersionStats()
    c = observed.versions.get(canary) or VersionStats()
    measurements = {
        "source": observed.source,
        "primary": {"version": primary, **_measure(observed.versions.get(primary))},
        "canary": {"version": canary, **_measure(observed.versions.get(canary))},
        "shadow": {"rows": observed.shadow_rows, "delta_p99": observed.shadow_delta_p99},
    }
    if c.requests <= 0:
        seen = ", ".join(sorted(v or "(no label)" for v in observed.versions)) or "none"
        text = f"canary {canary!r} served no requests (versions seen: {seen})"
        return Look("inconclusive", [Check("traffic", "inconclusive", text)], measurements)
    checks = [_errors(p, c, policy), _latency(p, c, policy)]
    if policy.max_p99_ms is not None:
        limit = policy.max_p99_ms / 1000
        checks.append(_tail("latency limit", c.buckets, limit, policy, f"{policy.max_p99_ms:g} ms"))
    if policy.max_shadow_delta_p99 is not None and observed.shadow_rows > 0:
        limit = policy.max_shadow_delta_p99
        checks.append(_tail("shadow", observed.shadow, limit, policy, f"{limit:g}"))
    verdicts = {check.verdict for check in checks}
    verdict: Verdict = (
        "fail" if "fail" in verdicts else "pass" if verdicts == {"pass"} else "inconclusive"
    )
    return Look(verdict, checks, measurements)


def _few(what: str, p_n: float, c_n: float, policy: RolloutPolicy) -> str | None:
    if min(p_n, c_n) >= policy.min_samples:
        return None
    return (
        f"{what}: too few requests to vote (primary {p_n:.0f}, canary {c_n:.0f}; "
        f"min_samples {policy.min_samples} each)"
    )


def _errors(p: VersionStats, c: VersionStats, policy: RolloutPolicy) -> Check:
    few = _few("error rate", p.requests, c.requests, policy)
    if few:
        return Check("errors", "inconclusive", few)
    d = st.proportion_difference(c.errors, c.requests, p.errors, p.requests, policy.alpha)
    allowed = policy.max_error_rate_delta
    figures = {"delta": d.delta, "lower": d.lower, "upper": d.upper, "allowed": allowed}
    text = (
        f"error rate: canary {100 * c.errors / c.requests:.2f}% vs primary "
        f"{100 * p.errors / p.requests:.2f}% ({100 * d.delta:+.2f} pt, "
        f"{100 * (1 - policy.alpha):g}% bounds {100 * d.lower:+.2f}..{100 * d.upper:+.2f} pt; "
        f"allowed +{100 * allowed:.2f} pt)"
    )
    if d.lower > 0 and d.delta > allowed:
        return Check("errors", "fail", text, figures)
    return Check("errors", "pass" if d.upper <= allowed else "inconclusive", text, figures)


def _latency(p: VersionStats, c: VersionStats, policy: RolloutPolicy) -> Check:
    few = _few("latency", p.requests, c.requests, policy)
    if few:
        return Check("latency", "inconclusive", few)
    bounds = sorted(set(p.buckets) & set(c.buckets))
    if not bounds or bounds[-1] != INF:
        return Check("latency", "inconclusive", "latency: the two histograms share no buckets")
    per_c, per_p = st.per_bucket(c.buckets, bounds), st.per_bucket(p.buckets, bounds)
    rank = st.bucketed_mann_whitney(per_c, per_p)
    beyond: list[str] = []
    parts: list[str] = []
    figures: dict[str, Any] = {"p_value": rank.p_value, "superiority": rank.superiority}
    for q in (0.5, 0.99):
        cq, pq = histogram_quantile(q, c.buckets), histogram_quantile(q, p.buckets)
        if cq is None or pq is None:
            continue
        name = f"p{round(100 * q)}"
        diff_ms, ratio = 1000 * (cq - pq), cq / pq if pq > 0 else INF
        figures[name] = {"canary_ms": 1000 * cq, "primary_ms": 1000 * pq, "ratio": ratio}
        parts.append(f"{name} {_ms(cq)} vs {_ms(pq)} ({diff_ms:+.1f} ms, x{ratio:.2f})")
        if diff_ms > policy.min_effect_ms and ratio > policy.max_p99_ratio:
            beyond.append(name)
    text = (
        f"latency: {', '.join(parts)}; Mann-Whitney p={rank.p_value:.2g}, "
        f"P(canary slower)={rank.superiority:.2f} (worse = +{policy.min_effect_ms:g} ms and "
        f"x{policy.max_p99_ratio:.2f} at p50 or p99, p < {policy.alpha:g})"
    )
    if beyond and rank.p_value < policy.alpha:
        return Check("latency", "fail", text, figures)
    return Check("latency", "inconclusive" if beyond else "pass", text, figures)


def _tail(
    signal: str, buckets: dict[float, float], limit: float, policy: RolloutPolicy, label: str
) -> Check:
    """More than 1% of observations above ``limit`` (a p99 above it), as a binomial test."""
    surely, maybe, total = st.share_above(buckets, limit)
    if total < policy.min_samples:
        text = f"{signal}: {total:.0f} observations, min_samples {policy.min_samples}"
        return Check(signal, "inconclusive", text)
    z = st.z_of(policy.alpha)
    lower, _ = st.wilson(surely, total, z)
    _, upper = st.wilson(maybe, total, z)
    figures = {"above": surely, "maybe_above": maybe, "total": total, "p99": None}
    p99 = histogram_quantile(0.99, buckets)
    figures["p99"] = p99
    what = "p99 latency" if signal == "latency limit" else "shadow delta p99"
    shown = _ms(p99) if signal == "latency limit" else "n/a" if p99 is None else f"{p99:.4g}"
    text = (
        f"{what}: {shown} over {total:.0f} (max {label}); {100 * surely / total:.2f}% above it, "
        f"bounds {100 * lower:.2f}..{100 * upper:.2f}% vs {100 * TAIL:g}%"
    )
    if lower > TAIL:
        return Check(signal, "fail", text, figures)
    return Check(signal, "pass" if upper <= TAIL else "inconclusive", text, figures)
