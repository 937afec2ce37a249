"""One look's verdict, one test per rule: a signal fails only when its test says "worse" at
``alpha`` AND the effect is beyond the allowance, passes when shown within it, and holds
(inconclusive) otherwise -- including below ``min_samples``."""

from __future__ import annotations

import math

from berth.rollout.analyze import judge
from berth.rollout.metrics import INF, Observed, VersionStats
from berth.rollout.policy import RolloutPolicy

POLICY = RolloutPolicy(
    min_samples=200,
    alpha=0.01,
    max_error_rate_delta=0.01,
    max_p99_ratio=1.5,
    min_effect_ms=2.0,
    max_shadow_delta_p99=0.05,
)
BOUNDS = (0.002, 0.004, 0.006, 0.008, 0.01, 0.02, 0.05, 0.1, 0.5)


def stats(requests: int, errors: int = 0, shift_ms: float = 0.0) -> VersionStats:
    """``requests`` spread evenly over 1..5 ms (plus ``shift_ms``), as cumulative buckets."""
    latencies = [0.001 + 0.004 * (i + 0.5) / requests + shift_ms / 1000 for i in range(requests)]
    buckets = {b: float(sum(x <= b for x in latencies)) for b in BOUNDS}
    buckets[INF] = float(requests)
    return VersionStats(requests=requests, errors=errors, buckets=buckets)


def observe(
    primary: VersionStats, canary: VersionStats | None, shadow_above: int | None = None
) -> Observed:
    out = Observed(versions={"v1": primary}, source="test")
    if canary is not None:
        out.versions["v2"] = canary
    if shadow_above is not None:  # 2000 rows, `shadow_above` of them with delta > 0.05
        out.shadow.update({0.01: 2000 - shadow_above, 0.05: 2000 - shadow_above, INF: 2000})
    return out


def verdicts(look: object) -> dict[str, str]:
    return {c.signal: c.verdict for c in look.checks}  # type: ignore[attr-defined]


def test_an_identical_canary_with_enough_traffic_passes() -> None:
    look = judge(observe(stats(3000, 3), stats(1500, 1), shadow_above=2), POLICY, "v1", "v2")
    assert look.verdict == "pass", look.checks
    assert verdicts(look) == {"errors": "pass", "latency": "pass", "shadow": "pass"}
    assert look.measurements["canary"]["requests"] == 1500


def test_no_canary_traffic_is_inconclusive() -> None:
    look = judge(observe(stats(1000), None), POLICY, "v1", "v2")
    assert look.verdict == "inconclusive" and "versions seen: v1" in look.checks[0].text


def test_below_min_samples_no_signal_votes_even_when_every_request_failed() -> None:
    look = judge(observe(stats(1000), stats(50, errors=50, shift_ms=400)), POLICY, "v1", "v2")
    assert look.verdict == "inconclusive"
    assert all("too few requests" in c.text for c in look.checks)


def test_more_errors_fail_only_when_significant_and_beyond_the_allowance() -> None:
    worse = judge(observe(stats(3000, 3), stats(1000, 30)), POLICY, "v1", "v2")
    assert worse.verdict == "fail" and verdicts(worse)["errors"] == "fail"
    assert worse.reasons("fail")[0].startswith("error rate: canary 3.00% vs primary 0.10%")
    # +0.8 pt, significant but within the 1-point allowance: not a failure, not shown safe.
    small = judge(observe(stats(3000, 3), stats(1000, 9)), POLICY, "v1", "v2")
    assert verdicts(small)["errors"] == "inconclusive"
    # +1.3 pt on 220 requests: beyond the allowance but not yet significant at alpha 0.01.
    noisy = judge(observe(stats(3000, 30), stats(220, 5)), POLICY, "v1", "v2")
    assert verdicts(noisy)["errors"] == "inconclusive"


def test_a_slower_canary_fails_on_latency() -> None:
    look = judge(observe(stats(3000), stats(1000, shift_ms=5)), POLICY, "v1", "v2")
    assert look.verdict == "fail" and verdicts(look)["latency"] == "fail"
    figures = look.checks[1].figures
    assert figures["p_value"] < 1e-6 and figures["superiority"] > 0.9
    assert figures["p50"]["canary_ms"] - figures["p50"]["primary_ms"] > 2


def test_a_significant_but_small_slowdown_is_not_a_failure() -> None:
    """+0.5 ms on ~3 ms: Mann-Whitney sees it, but it is under min_effect_ms and the ratio."""
    look = judge(observe(stats(3000), stats(3000, shift_ms=0.5)), POLICY, "v1", "v2")
    assert look.checks[1].figures["p_value"] < 0.01
    assert verdicts(look)["latency"] == "pass"


def test_absolute_latency_limit_is_a_tail_share_test() -> None:
    policy = POLICY.model_copy(update={"max_p99_ms": 6.0, "max_p99_ratio": 100.0})
    slow = judge(observe(stats(3000), stats(1000, shift_ms=4)), policy, "v1", "v2")
    assert verdicts(slow)["latency limit"] == "fail"
    fast = judge(observe(stats(3000), stats(1000)), policy, "v1", "v2")
    assert verdicts(fast)["latency limit"] == "pass"


def test_shadow_deltas_fail_when_more_than_1_percent_of_rows_are_shown_above() -> None:
    look = judge(observe(stats(3000), stats(1500), shadow_above=200), POLICY, "v1", "v2")
    assert look.verdict == "fail" and verdicts(look)["shadow"] == "fail"
    assert "shadow delta p99" in look.reasons("fail")[0]
    unsure = judge(observe(stats(3000), stats(1500), shadow_above=25), POLICY, "v1", "v2")
    assert verdicts(unsure)["shadow"] == "inconclusive"  # 1.25%: not shown either way


def test_shadow_unchecked_without_threshold_or_rows() -> None:
    loose = POLICY.model_copy(update={"max_shadow_delta_p99": None})
    look = judge(observe(stats(3000), stats(1500), shadow_above=500), loose, "v1", "v2")
    assert "shadow" not in verdicts(look)
    assert "shadow" not in verdicts(judge(observe(stats(3000), stats(1500)), POLICY, "v1", "v2"))


def test_histograms_without_shared_buckets_are_inconclusive() -> None:
    other = VersionStats(requests=1000, buckets={0.7: 1000.0, math.inf: 1000.0})
    other_p = VersionStats(requests=1000, buckets={0.3: 1000.0})
    look = judge(Observed(versions={"v1": other_p, "v2": other}), POLICY, "v1", "v2")
    assert verdicts(look)["latency"] == "inconclusive"
