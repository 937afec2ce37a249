"""``LabelCache``: the children ``labels()`` gives, bound once; counts land on their series."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from berth.serving.metrics import LabelCache


def test_label_cache_gives_the_metrics_own_children_once_each() -> None:
    registry = CollectorRegistry()
    histogram = Histogram("t_seconds", "t", ["protocol", "outcome"], registry=registry)
    cache = LabelCache(histogram)
    first = cache.labels("v1", "200")
    assert first is histogram.labels("v1", "200")
    assert cache.labels("v1", "200") is first
    assert cache.labels("v2", "200") is histogram.labels("v2", "200")
    assert cache.labels("v2", "200") is not first
    cache.labels("v1", "200").observe(0.5)
    cache.labels("v1", "200").observe(0.25)
    assert registry.get_sample_value("t_seconds_count", {"protocol": "v1", "outcome": "200"}) == 2
    assert registry.get_sample_value("t_seconds_sum", {"protocol": "v1", "outcome": "200"}) == 0.75
    assert registry.get_sample_value("t_seconds_count", {"protocol": "v2", "outcome": "200"}) == 0


def test_label_cache_on_a_counter_counts_like_labels() -> None:
    registry = CollectorRegistry()
    counter = Counter("t_routed", "t", ["target"], registry=registry)
    cache = LabelCache(counter)
    for _ in range(3):
        cache.labels("canary").inc()
    counter.labels("canary").inc()
    assert registry.get_sample_value("t_routed_total", {"target": "canary"}) == 4
