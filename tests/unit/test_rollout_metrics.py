"""Quantiles from histogram buckets (as PromQL's histogram_quantile), error counts per model
version, and the /metrics text of a real prometheus_client registry. No server."""

from __future__ import annotations

import math

import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from berth.rollout import metrics
from berth.rollout.metrics import INF, histogram_quantile
from berth.rollout.policy import MetricNames, RolloutPolicy

# Hand-checked: 100 observations; 10 <= 10 ms, 40 more <= 50 ms, 40 more <= 100 ms, 8 more
# <= 500 ms, 2 more <= 1 s.
BUCKETS = {0.01: 10, 0.05: 50, 0.1: 90, 0.5: 98, 1.0: 100, INF: 100}


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        (0.99, 0.75),  # rank 99 in (0.5, 1]: 0.5 + 0.5 * (99 - 98) / 2
        (0.9, 0.1),  # rank 90 is the top of (0.05, 0.1]
        (0.5, 0.05),  # rank 50 is the top of (0.01, 0.05]
        (0.05, 0.005),  # rank 5 in (0, 0.01]: 0.01 * 5 / 10
        (0.3, 0.03),  # rank 30 in (0.01, 0.05]: 0.01 + 0.04 * 20 / 40
    ],
)
def test_quantile_hand_checked(q: float, expected: float) -> None:
    assert histogram_quantile(q, BUCKETS) == pytest.approx(expected)


def test_quantile_edges() -> None:
    assert histogram_quantile(0.99, {0.1: 5, INF: 10}) == 0.1  # rank in +Inf: highest bound
    assert histogram_quantile(0.99, {0.1: 0, INF: 0}) is None  # no observations
    assert histogram_quantile(0.99, {0.1: 5, 0.2: 5}) is None  # no +Inf bucket
    assert histogram_quantile(0.5, {0.1: 5, 0.2: 4, INF: 10}) == pytest.approx(0.1)  # repaired
    negative = {-1.0: 4, 0.0: 8, INF: 8}
    assert histogram_quantile(0.5, negative) == -1.0  # first bucket, bound <= 0: the bound
    assert histogram_quantile(0.75, negative) == pytest.approx(-0.5)
    with pytest.raises(ValueError, match="outside"):
        histogram_quantile(1.5, BUCKETS)


def test_quantile_matches_a_real_histogram() -> None:
    registry = CollectorRegistry()
    h = Histogram(
        "berth_transformer_model_request_seconds",
        "t",
        ["model_version", "outcome"],
        buckets=(0.01, 0.05, 0.1, 0.5, 1.0),
        registry=registry,
    )
    for value, n in ((0.005, 10), (0.03, 40), (0.07, 40), (0.3, 8), (0.8, 2)):
        for _ in range(n):
            h.labels("v1", "200").observe(value)
    for _ in range(3):
        h.labels("v1", "503").observe(0.02)
        h.labels("v2", "400").observe(0.02)
    samples = metrics.parse_exposition(generate_latest(registry).decode(), h._name)
    observed = metrics.accumulate(samples, [], RolloutPolicy(), "test")
    v1, v2 = observed.versions["v1"], observed.versions["v2"]
    assert (v1.requests, v1.errors, v2.requests, v2.errors) == (103, 3, 3, 0)  # 4xx is no error
    assert v1.error_rate == pytest.approx(3 / 103)
    assert v1.p99_s == pytest.approx(0.5 + 0.5 * (0.99 * 103 - 101) / 2)


def test_accumulate_sums_pods_and_reads_the_shadow() -> None:
    policy = RolloutPolicy(metrics=MetricNames(version_label="v", error_outcomes="5..|timeout"))
    requests = [
        ({"v": "a", "outcome": "200", "le": "0.1"}, 4.0),
        ({"v": "a", "outcome": "200", "le": "+Inf"}, 5.0),
        ({"v": "a", "outcome": "timeout", "le": "+Inf"}, 1.0),
        ({"v": "a", "outcome": "200", "le": "+Inf"}, 5.0),  # a second pod
        ({"v": "a", "outcome": "200", "le": "0.1"}, math.nan),  # Prometheus NaN: skipped
    ]
    shadow = [({"le": "0.01"}, 90.0), ({"le": "0.1"}, 100.0), ({"le": "+Inf"}, 100.0)]
    observed = metrics.accumulate(requests, shadow, policy, "test")
    assert observed.versions["a"].requests == 11 and observed.versions["a"].errors == 1
    assert observed.shadow_rows == 100
    assert observed.shadow_delta_p99 == pytest.approx(0.01 + 0.09 * 9 / 10)


def test_promql() -> None:
    requests, shadow = metrics.queries(RolloutPolicy(window="5m"))
    assert requests == (
        "sum by (model_version, outcome, le) "
        "(increase(berth_transformer_model_request_seconds_bucket[5m]))"
    )
    assert shadow == "sum by (le) (increase(berth_transformer_shadow_delta_bucket[5m]))"
