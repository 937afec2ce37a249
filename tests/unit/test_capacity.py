"""The capacity plan's arithmetic (benchmarks/capacity.py) on given figures, and its values
file rendered by the real chart."""

from __future__ import annotations

import math

import pytest
import yaml

from benchmarks import capacity
from benchmarks.capacity import Costs


def costs(**changes: object) -> Costs:
    base = Costs(
        transformer_cpu_ms=1.0,
        predictor_cpu_ms=0.5,
        held_rps={10.0: 500.0, 25.0: 650.0},
        single_request_ms=2.0,
        hmget_per_request=11,
        hmget_per_s_per_shard=100_000.0,
    )
    for key, value in changes.items():
        setattr(base, key, value)
    return base


def test_pods_cpu_and_shards_follow_the_measured_costs() -> None:
    # p99 10 ms held at 500 rps x 1.0 ms CPU = 50% of a core: the planned utilisation.
    p = capacity.plan(10_000, 10, costs(), headroom=0.3)
    assert p.bound_used_ms == 10 and p.transformer.utilisation == 0.5
    assert p.transformer.rps_per_pod == 500 and p.transformer.replicas == 20
    assert p.predictor.rps_per_pod == 1000 and p.predictor.replicas == 10
    # 10,000 / 20 pods x 1.0 ms = 500m used, x 1.3 headroom = 650m request, limit 2x -> 1300m.
    assert (p.transformer.cpu_request_m, p.transformer.cpu_limit_m) == (650, 1300)
    assert (p.predictor.cpu_request_m, p.predictor.cpu_limit_m) == (650, 1300)
    # 110,000 HMGET/s over 70,000 usable per shard -> 2, and a cluster has at least 3 masters.
    assert p.hmget_per_s == 110_000 and p.shards == 3 and p.redis_type == "redis_cluster"


def test_utilisation_is_capped_by_the_headroom_and_a_small_load_needs_one_redis() -> None:
    p = capacity.plan(1_000, 30, costs(), headroom=0.4)  # 25 ms bound: 65% > 1 - 0.4
    assert p.bound_used_ms == 25 and p.transformer.utilisation == 0.6
    assert p.transformer.replicas == math.ceil(1_000 / 600)
    assert p.shards == 1 and p.redis_type == "redis"
    assert (p.transformer.cpu_request_m, p.transformer.cpu_limit_m) == (700, 1400)
    small = capacity.plan(200, 30, costs(), headroom=0.4).transformer
    assert (small.replicas, small.cpu_request_m, small.cpu_limit_m) == (1, 300, 1000)  # 1 core


def test_a_bound_below_every_measured_one_is_extrapolated_and_says_so() -> None:
    p = capacity.plan(1_000, 6, costs())
    assert p.bound_used_ms == 10
    assert p.transformer.utilisation == pytest.approx(0.5 * (6 - 2) / (10 - 2))
    assert p.warnings and "extrapolation" in p.warnings[0]
    with pytest.raises(ValueError, match="below one unloaded request"):
        capacity.plan(1_000, 1.5, costs())


def test_costs_come_from_a_compare_run() -> None:
    results = {
        "command": "python -m benchmarks compare --quick",
        "e2e": {
            "berth": {
                "cpu_bound": {
                    "cpu_ms_per_request": {"transformer": 1.2, "predictor": 0.7, "redis": 0.11}
                },
                "sweep": {"by_bound_ms": {"10": {"max_rps": 540.0}, "25": {"max_rps": 0.0}}},
            }
        },
        "features": {"candidates": 10},
    }
    c = capacity.costs_from_results(results)
    assert (c.transformer_cpu_ms, c.predictor_cpu_ms) == (1.2, 0.7)
    assert c.held_rps == {10.0: 540.0, 25.0: 0.0}
    assert c.hmget_per_request == 11 and c.hmget_per_s_per_shard == 100_000
    p = capacity.plan(2_000, 30, c)  # the 25 ms bound held nothing: the 10 ms one is used
    assert p.bound_used_ms == 10
    assert "cpu_ms_per_request.transformer" in c.sources["transformer_cpu_ms"]


def test_the_values_file_uses_the_charts_keys_and_renders() -> None:
    chart = pytest.importorskip("berth.kube.chart")
    pytest.importorskip("helm_python")
    p = capacity.plan(10_000, 10, costs())
    values = yaml.safe_load(capacity.values_yaml(p))
    assert values["transformer"]["minReplicas"] == 20
    assert values["featureStore"]["redis"]["type"] == "redis_cluster"
    objects = chart.render_objects(values)
    isvc = next(o for o in objects if o["kind"] == "InferenceService")
    transformer = isvc["spec"]["transformer"]
    assert transformer["minReplicas"] == 20 and transformer["maxReplicas"] == 30
    container = transformer["containers"][0]
    assert container["resources"]["requests"]["cpu"] == "650m"
    assert container["resources"]["limits"]["cpu"] == "1300m"
    config = "\n".join(yaml.safe_dump(o) for o in objects if o["kind"] == "ConfigMap")
    assert "redis_cluster" in config
