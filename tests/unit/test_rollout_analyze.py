"""The promote / hold / rollback decision, one test per rule."""

from __future__ import annotations

from berth.rollout.analyze import decide
from berth.rollout.metrics import INF, Observed, VersionStats
from berth.rollout.policy import RolloutPolicy

POLICY = RolloutPolicy(
    min_requests=100, max_error_rate_delta=0.01, max_p99_ratio=1.5, max_shadow_delta_p99=0.05
)


def stats(requests: int, errors: int = 0, slow: float = 0.0) -> VersionStats:
    """``requests`` with latencies <= 50 ms, except a ``slow`` share in (0.25 s, 0.5 s]."""
    fast = round(requests * (1 - slow))
    return VersionStats(
        requests=requests,
        errors=errors,
        buckets={0.05: fast, 0.25: fast, 0.5: requests, INF: requests},
    )


def observe(
    primary: VersionStats, canary: VersionStats | None, shadow_p99: float | None = None
) -> Observed:
    out = Observed(versions={"v1": primary}, source="test")
    if canary is not None:
        out.versions["v2"] = canary
    if shadow_p99 is not None:  # all 1000 rows spread evenly in (0, 2 * shadow_p99 / 1.98]
        out.shadow.update({2 * shadow_p99 / 1.98: 1000, INF: 1000})
    return out


def test_healthy_canary_is_promoted() -> None:
    d = decide(observe(stats(1000, 5), stats(200, 1), shadow_p99=0.01), POLICY, "v1", "v2")
    assert d.action == "promote"
    assert d.reasons == ["every threshold met"]
    assert [c.split(":")[0] for c in d.passed] == ["error rate", "p99 latency", "shadow delta p99"]
    assert d.measurements["canary"]["requests"] == 200


def test_no_canary_traffic_holds() -> None:
    d = decide(observe(stats(1000), None), POLICY, "v1", "v2")
    assert d.action == "hold" and "versions seen: v1" in d.reasons[0]


def test_too_few_requests_hold() -> None:
    d = decide(observe(stats(1000), stats(50)), POLICY, "v1", "v2")
    assert d.action == "hold" and "not enough requests" in d.reasons[0]
    d = decide(observe(stats(50), stats(500)), POLICY, "v1", "v2")
    assert d.action == "hold"


def test_error_rate_rolls_back_even_on_few_requests() -> None:
    d = decide(observe(stats(1000, 10), stats(20, 2)), POLICY, "v1", "v2")
    assert d.action == "rollback" and d.reasons[0].startswith("error rate: canary 10.00%")
    assert d.passed and d.passed[0].startswith("p99 latency")


def test_error_rate_at_the_threshold_passes() -> None:
    d = decide(observe(stats(1000, 10), stats(1000, 20)), POLICY, "v1", "v2")
    assert d.action == "promote"


def test_p99_ratio_rolls_back() -> None:
    d = decide(observe(stats(1000), stats(1000, slow=0.05)), POLICY, "v1", "v2")
    assert d.action == "rollback" and "p99 latency" in d.reasons[0] and "max x1.50" in d.reasons[0]


def test_absolute_p99_rolls_back() -> None:
    policy = POLICY.model_copy(update={"max_p99_ms": 40.0, "max_p99_ratio": 100.0})
    d = decide(observe(stats(1000), stats(1000)), policy, "v1", "v2")
    assert d.action == "rollback" and d.reasons == ["p99 latency: canary 49.5 ms (max 40 ms)"]


def test_shadow_delta_rolls_back() -> None:
    d = decide(observe(stats(1000), stats(1000), shadow_p99=0.2), POLICY, "v1", "v2")
    assert d.action == "rollback" and d.reasons[0].startswith("shadow delta p99: 0.2 over 1000")


def test_shadow_unchecked_without_threshold_or_rows() -> None:
    loose = POLICY.model_copy(update={"max_shadow_delta_p99": None})
    assert decide(observe(stats(1000), stats(1000), 0.2), loose, "v1", "v2").action == "promote"
    assert decide(observe(stats(1000), stats(1000)), POLICY, "v1", "v2").action == "promote"
