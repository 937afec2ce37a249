"""The tests behind a canary verdict: hand-checked values, a brute-force U, and calibration
by simulation (an identical canary is flagged at about ``alpha``, a shifted one nearly always).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from berth.rollout import stats as st


def test_newcombe_interval_matches_the_published_example() -> None:
    """Newcombe (1998), Stat. Med. 17:873, example (a): 56/70 - 48/80, method 10 gives
    95% bounds 0.0524 .. 0.3339 (two-sided 95% = one-sided alpha 0.025 per side)."""
    d = st.proportion_difference(56, 70, 48, 80, alpha=0.025)
    assert d.delta == pytest.approx(0.2)
    assert d.lower == pytest.approx(0.0524, abs=5e-4)
    assert d.upper == pytest.approx(0.3339, abs=5e-4)


def test_newcombe_interval_is_sound_at_zero_counts() -> None:
    d = st.proportion_difference(0, 1000, 0, 1000, alpha=0.01)
    assert d.delta == 0 and d.lower < 0 < d.upper < 0.01  # zero errors: shown below 1 point
    few = st.proportion_difference(0, 500, 0, 1000, alpha=0.01)
    assert few.upper > 0.01  # 500 clean requests do not yet show "at most 1 point worse"
    worse = st.proportion_difference(20, 500, 0, 1000, alpha=0.01)
    assert worse.lower > 0.02  # 4% vs 0%: surely worse by 2 points


def test_wilson_bounds() -> None:
    lower, upper = st.wilson(0, 100, 1.96)
    assert lower == 0 and upper == pytest.approx(0.037, abs=1e-3)  # the rule of three, Wilson
    assert st.wilson(5, 0, 1.96) == (0.0, 1.0)


def brute_u(canary: list[int], primary: list[int]) -> float:
    xs = [i for i, n in enumerate(canary) for _ in range(n)]
    ys = [i for i, n in enumerate(primary) for _ in range(n)]
    return sum(1.0 if x > y else 0.5 if x == y else 0.0 for x in xs for y in ys)


def test_mann_whitney_u_equals_pair_counting() -> None:
    rng = np.random.default_rng(3)
    for _ in range(20):
        a = [int(v) for v in rng.integers(0, 6, 5)]
        b = [int(v) for v in rng.integers(0, 6, 5)]
        if sum(a) and sum(b):
            test = st.bucketed_mann_whitney([float(v) for v in a], [float(v) for v in b])
            assert test.u == pytest.approx(brute_u(a, b))
            assert test.superiority == pytest.approx(brute_u(a, b) / (sum(a) * sum(b)))


def test_mann_whitney_hand_checked_and_degenerate() -> None:
    test = st.bucketed_mann_whitney([0.0, 10.0], [10.0, 0.0])  # canary all in the slow bucket
    # U = 100, mean 50; ties: two groups of 10 -> var = 100/12 * (21 - 1980/380)
    var = 100 / 12 * (21 - 2 * (1000 - 10) / (20 * 19))
    assert test.superiority == 1.0 and test.z == pytest.approx(50 / math.sqrt(var))
    assert test.p_value < 1e-4
    same_bucket = st.bucketed_mann_whitney([0.0, 10.0], [0.0, 5.0])
    assert same_bucket.p_value == 1.0  # no spread, no evidence
    assert st.bucketed_mann_whitney([], []).p_value == 1.0


BOUNDS = [0.002, 0.003, 0.004, 0.005, 0.006, 0.008, 0.01, 0.02, 0.05, math.inf]


def histogram(samples: np.ndarray) -> list[float]:
    idx = np.searchsorted(BOUNDS, samples, side="left")
    return [float(v) for v in np.bincount(idx, minlength=len(BOUNDS))]


def test_identical_canary_is_flagged_at_about_alpha() -> None:
    """2,000 A/A comparisons of 300 vs 700 lognormal latencies: share with p < 0.05."""
    rng = np.random.default_rng(11)
    hits = 0
    for _ in range(2000):
        c = histogram(rng.lognormal(math.log(0.003), 0.4, 300))
        p = histogram(rng.lognormal(math.log(0.003), 0.4, 700))
        hits += st.bucketed_mann_whitney(c, p).p_value < 0.05
    assert 0.035 <= hits / 2000 <= 0.065


def test_a_5_ms_slower_canary_is_always_flagged() -> None:
    rng = np.random.default_rng(12)
    for _ in range(200):
        c = histogram(rng.lognormal(math.log(0.003), 0.4, 300) + 0.005)
        p = histogram(rng.lognormal(math.log(0.003), 0.4, 700))
        assert st.bucketed_mann_whitney(c, p).p_value < 1e-6


def test_per_bucket_and_share_above() -> None:
    cumulative = {0.01: 10.0, 0.05: 50.0, 0.1: 49.0, math.inf: 100.0}  # 0.1 repaired to 50
    assert st.per_bucket(cumulative, sorted(cumulative)) == [10.0, 40.0, 0.0, 50.0]
    assert st.share_above(cumulative, 0.05) == (50.0, 50.0, 100.0)  # on a bound: exact
    assert st.share_above(cumulative, 0.03) == (50.0, 90.0, 100.0)  # between: surely/maybe
    assert st.share_above(cumulative, 5.0) == (0.0, 50.0, 100.0)
