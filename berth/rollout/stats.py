"""The tests behind a canary verdict, on counts and histogram buckets only (no scipy).

- :func:`proportion_difference`: canary minus primary rate of a binomial event (errors), with
  a one-sided confidence interval by Newcombe's hybrid score method (Wilson intervals of each
  rate combined); sound at zero counts, where the Wald z-test is not.
- :func:`bucketed_mann_whitney`: the Mann-Whitney U test of "canary latencies tend to be
  larger" on two histograms with shared bounds: each bucket is one tied rank group, the
  variance carries the tie correction. One-sided p-value by the normal approximation, and the
  common-language effect ``P(canary > primary) + P(tie) / 2``.
- :func:`share_above`: how many observations lie above a bound, read from cumulative buckets
  (for "more than 1% of rows above the threshold", i.e. a p99 above it, as a binomial count).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from statistics import NormalDist

_NORMAL = NormalDist()


def z_of(alpha: float) -> float:
    """The standard normal quantile ``1 - alpha`` (one-sided critical value)."""
    return _NORMAL.inv_cdf(1.0 - alpha)


def wilson(successes: float, n: float, z: float) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (``z``: critical value per side)."""
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class Difference:
    """``delta`` = canary rate - primary rate, and its one-sided bounds at level 1 - alpha:
    ``lower`` (the canary is worse by at least this) and ``upper`` (by at most this)."""

    delta: float
    lower: float
    upper: float


def proportion_difference(
    canary_events: float, canary_n: float, primary_events: float, primary_n: float, alpha: float
) -> Difference:
    """Newcombe's hybrid score interval (his method 10) of canary rate - primary rate."""
    z = z_of(alpha)
    pc, pp = canary_events / canary_n, primary_events / primary_n
    lc, uc = wilson(canary_events, canary_n, z)
    lp, up = wilson(primary_events, primary_n, z)
    delta = pc - pp
    lower = delta - math.sqrt((pc - lc) ** 2 + (up - pp) ** 2)
    upper = delta + math.sqrt((uc - pc) ** 2 + (pp - lp) ** 2)
    return Difference(delta, lower, upper)


def per_bucket(cumulative: dict[float, float], bounds: list[float]) -> list[float]:
    """Counts in each bucket ``(previous bound, bound]`` of ``bounds`` (sorted, ending at +Inf),
    from cumulative counts; a decreasing count is repaired as PromQL does."""
    out, below = [], 0.0
    for bound in bounds:
        running = max(below, cumulative.get(bound, below))
        out.append(running - below)
        below = running
    return out


@dataclass(frozen=True)
class RankTest:
    """One-sided Mann-Whitney U: ``p_value`` of "canary no slower" and the effect
    ``superiority`` = P(canary > primary) + P(tie) / 2 (0.5: no shift)."""

    u: float
    z: float
    p_value: float
    superiority: float


def bucketed_mann_whitney(canary: list[float], primary: list[float]) -> RankTest:
    """U of canary over primary from per-bucket counts (same bounds, ascending)."""
    n1, n2 = sum(canary), sum(primary)
    if n1 <= 0 or n2 <= 0:
        return RankTest(0.0, 0.0, 1.0, 0.5)
    u, primary_below, ties = 0.0, 0.0, 0.0
    for a, b in zip(canary, primary, strict=True):
        u += a * (primary_below + b / 2)
        primary_below += b
        t = a + b
        ties += t**3 - t
    n = n1 + n2
    mean = n1 * n2 / 2
    variance = n1 * n2 / 12 * ((n + 1) - ties / (n * (n - 1)))
    if variance <= 0:  # every observation in one bucket: no evidence either way
        return RankTest(u, 0.0, 1.0, u / (n1 * n2))
    z = (u - mean) / math.sqrt(variance)
    return RankTest(u, z, 1.0 - _NORMAL.cdf(z), u / (n1 * n2))


def share_above(cumulative: dict[float, float], threshold: float) -> tuple[float, float, float]:
    """``(surely_above, maybe_above, total)``: observations above the smallest bound >=
    ``threshold`` (surely above it), above the largest bound <= ``threshold`` (perhaps above
    it), and all of them (the +Inf bucket)."""
    bounds = sorted(cumulative)
    counts = dict(zip(bounds, itertools.accumulate(per_bucket(cumulative, bounds)), strict=True))
    total = counts.get(math.inf, 0.0)
    upper = next((b for b in bounds if b >= threshold), math.inf)
    lower = max((b for b in bounds if b <= threshold), default=None)
    surely = total - counts.get(upper, total)
    maybe = total - (counts[lower] if lower is not None else 0.0)
    return surely, maybe, total
