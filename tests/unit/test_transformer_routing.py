"""Canary routing: sticky per customer, the configured share, the version in every answer."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from prometheus_client import REGISTRY

from berth.errors import ModelNotFoundError
from berth_transformer import routing
from berth_transformer.model import MODEL_VERSION_HEADER, FeatureTransformer
from berth_transformer.predictor_client import Prediction
from berth_transformer.settings import TransformerSettings
from tests.unit.test_transformer_model import FakeReader


class VersionedPredictor:
    protocol = "grpc-v2"

    def __init__(self, version: str, offset: float = 0.0) -> None:
        self.version, self.offset, self.calls = version, offset, 0

    async def infer(self, features: np.ndarray, request_id: str) -> Prediction:
        self.calls += 1
        scores = (features[:, 0] / np.float32(10_000) + np.float32(self.offset)).astype(np.float32)
        return Prediction(scores, self.version)

    async def close(self) -> None:
        pass


def test_bucket_is_stable_and_in_range() -> None:
    assert routing.bucket(42) == routing.bucket(42)
    buckets = [routing.bucket(i) for i in range(5000)]
    assert min(buckets) >= 0 and max(buckets) < routing.BUCKETS
    # Fixed value: the hash must not change between releases (customers would switch models).
    assert (routing.bucket(7), routing.bucket(123456789)) == (2567, 1264)
    assert routing.bucket(7) == routing.bucket(np.int64(7))


@pytest.mark.parametrize("percent", [1.0, 5.0, 20.0, 50.0, 90.0])
def test_share_over_many_customers_is_within_two_points(percent: float) -> None:
    ids = range(100_000)
    share = sum(routing.goes_to_canary(i, percent) for i in ids) / len(ids)
    assert abs(share - percent / 100) < 0.02


def test_sequential_and_sparse_ids_split_evenly() -> None:
    for ids in (range(1000, 6000), range(0, 5_000_000, 1000)):
        share = sum(routing.goes_to_canary(i, 20.0) for i in ids) / len(ids)
        assert abs(share - 0.20) < 0.02


def test_edges_and_monotonic_growth() -> None:
    ids = range(20_000)
    assert not any(routing.goes_to_canary(i, 0.0) for i in ids)
    assert all(routing.goes_to_canary(i, 100.0) for i in ids)
    at_10 = {i for i in ids if routing.goes_to_canary(i, 10.0)}
    at_30 = {i for i in ids if routing.goes_to_canary(i, 30.0)}
    assert at_10 <= at_30  # raising the percent only moves customers to the canary


def test_router_without_canary_is_always_primary() -> None:
    router = routing.Router(None, 100.0)
    assert {router.pick(i) for i in range(100)} == {routing.PRIMARY}


def test_a_pinned_target_wins_over_the_bucket_and_unknown_versions_are_404() -> None:
    router = routing.Router(object(), 50.0)  # type: ignore[arg-type]
    router.versions = {routing.PRIMARY: "v1", routing.CANARY: "v2"}
    assert router.served() == ["v1", "v2"]
    assert router.target_of("m", "v2") == routing.CANARY
    assert {router.pick(i, pinned=routing.CANARY) for i in range(200)} == {routing.CANARY}
    assert {router.pick(i) for i in range(200)} == {routing.PRIMARY, routing.CANARY}
    with pytest.raises(ModelNotFoundError, match="no version 'v3'; it serves 'v1', 'v2'"):
        router.target_of("m", "v3")
    alone = routing.Router(None, 0.0)
    alone.versions = {routing.PRIMARY: "v1", routing.CANARY: "v2"}  # no canary client: not served
    assert alone.served() == ["v1"]
    with pytest.raises(ModelNotFoundError):
        alone.target_of("m", "v2")


def _model(percent: float) -> tuple[FeatureTransformer, VersionedPredictor, VersionedPredictor]:
    settings = TransformerSettings(canary_host="unused:2", canary_percent=percent)
    m = FeatureTransformer("driver-ranking", settings, "unused:1")
    primary, canary = VersionedPredictor("v1"), VersionedPredictor("v2", offset=0.5)
    m.reader = FakeReader()  # type: ignore[assignment]
    m.predictor = primary
    m.router.canary = canary
    m.router.versions = {routing.PRIMARY: "v1", routing.CANARY: "v2"}
    m.model_version = "v1"
    m.ready = True
    return m, primary, canary


def _body(customer: int) -> dict[str, object]:
    row = {"customer_id": customer, "driver_id": 1003, "trip_distance_km": 4.2, "pickup_hour": 18}
    return {"instances": [row, {**row, "driver_id": 1004}]}


def test_each_customer_sticks_to_one_version_and_answers_name_it() -> None:
    model, primary, canary = _model(30.0)

    async def go() -> dict[int, set[str]]:
        seen: dict[int, set[str]] = {}
        for _ in range(3):
            for customer in range(200):
                body, headers = await model(_body(customer), headers={})
                assert headers[MODEL_VERSION_HEADER] == body["model_version"]
                seen.setdefault(customer, set()).add(body["model_version"])
        return seen

    seen = asyncio.run(go())
    assert all(len(versions) == 1 for versions in seen.values())
    expected = {c: ("v2" if routing.goes_to_canary(c, 30.0) else "v1") for c in seen}
    assert {c: v.pop() for c, v in seen.items()} == expected
    assert primary.calls + canary.calls == 600 and canary.calls > 0 and primary.calls > 0


def test_version_header_and_per_version_metrics() -> None:
    model, _, _ = _model(100.0)

    def count(version: str) -> float:
        labels = {"model_version": version, "outcome": "200"}
        return REGISTRY.get_sample_value("berth_transformer_model_requests_total", labels) or 0.0

    before = count("v2")
    body, headers = asyncio.run(model(_body(5), headers={}))
    assert body["model_version"] == "v2" and headers[MODEL_VERSION_HEADER] == "v2"
    assert count("v2") == before + 1
    routed = {"target": "canary", "model_version": "v2"}
    assert (REGISTRY.get_sample_value("berth_transformer_routed_total", routed) or 0) >= 1
