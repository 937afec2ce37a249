"""The shadow queue: bounded, drops and counts when full, never raises into the caller."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from berth_transformer import routing
from berth_transformer.model import FeatureTransformer
from berth_transformer.predictor_client import Prediction
from berth_transformer.settings import TransformerSettings
from berth_transformer.shadow import Shadow, ShadowCopy
from prometheus_client import REGISTRY

from berth.errors import DependencyUnavailableError
from tests.unit.test_transformer_model import FakeReader
from tests.unit.test_transformer_routing import VersionedPredictor


def sample(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


class SlowShadow:
    protocol = "grpc-v2"

    def __init__(self, delay_s: float = 0.0, error: Exception | None = None) -> None:
        self.delay_s, self.error, self.calls = delay_s, error, 0
        self.gate = asyncio.Event()

    async def infer(self, features: np.ndarray, request_id: str) -> Prediction:
        self.calls += 1
        await asyncio.sleep(self.delay_s)
        if self.error is not None:
            raise self.error
        return Prediction(np.full(len(features), 0.25, np.float32), "v2-shadow")

    async def close(self) -> None:
        pass


def copy(n: int = 3, request_id: str = "r") -> ShadowCopy:
    return ShadowCopy(np.zeros((n, 2), np.float32), np.full(n, 0.5, np.float32), request_id, "v1")


def test_full_queue_drops_and_counts_without_blocking() -> None:
    shadow = Shadow(SlowShadow(delay_s=10.0), queue_size=4, workers=1)
    dropped = sample("berth_transformer_shadow_dropped_total")

    async def go() -> list[bool]:
        results = [shadow.submit(copy(request_id=str(i))) for i in range(20)]
        await shadow.close()
        return results

    results = asyncio.run(go())
    # One copy may already be taken by the worker; at most queue_size + workers accepted.
    assert 4 <= sum(results) <= 5
    assert sample("berth_transformer_shadow_dropped_total") - dropped == 20 - sum(results)


def test_deltas_observed_per_row() -> None:
    shadow = Shadow(SlowShadow(), queue_size=8, workers=2)
    count = sample("berth_transformer_shadow_delta_count")
    total = sample("berth_transformer_shadow_delta_sum")

    async def go() -> None:
        for i in range(5):
            assert shadow.submit(copy(n=4, request_id=f"r{i}"))
        await shadow.drain()
        await shadow.close()

    asyncio.run(go())
    assert sample("berth_transformer_shadow_delta_count") - count == 20
    assert sample("berth_transformer_shadow_delta_sum") - total == pytest.approx(20 * 0.25)


def test_shadow_errors_are_counted_never_raised() -> None:
    failing = SlowShadow(error=DependencyUnavailableError("predictor", "UNAVAILABLE: gone"))
    shadow = Shadow(failing, queue_size=8, workers=1)
    errors = sample("berth_transformer_shadow_errors_total")

    async def go() -> None:
        for i in range(3):
            shadow.submit(copy(request_id=f"e{i}"))
        await shadow.drain()
        await shadow.close()

    asyncio.run(go())
    assert failing.calls == 3
    assert sample("berth_transformer_shadow_errors_total") - errors == 3


def test_submit_outside_a_loop_drops_instead_of_raising() -> None:
    shadow = Shadow(SlowShadow(), queue_size=2)
    dropped = sample("berth_transformer_shadow_dropped_total")
    assert shadow.submit(copy()) is False
    assert sample("berth_transformer_shadow_dropped_total") - dropped == 1


def test_primary_answer_unchanged_and_undelayed_by_a_broken_shadow() -> None:
    settings = TransformerSettings(shadow_host="unused:3", shadow_queue_size=2)
    model = FeatureTransformer("driver-ranking", settings, "unused:1")
    model.reader = FakeReader()  # type: ignore[assignment]
    model.predictor = VersionedPredictor("v1")
    assert model.shadow is not None
    model.shadow.client = SlowShadow(delay_s=5.0, error=RuntimeError("boom"))
    model.model_version = "v1"
    model.router.versions[routing.PRIMARY] = "v1"
    model.ready = True
    row = {"customer_id": 7, "driver_id": 1003, "trip_distance_km": 4.2, "pickup_hour": 18}

    async def go() -> list[object]:
        loop = asyncio.get_running_loop()
        started = loop.time()
        answers = [(await model({"instances": [row]}, headers={}))[0] for _ in range(10)]
        assert loop.time() - started < 1.0  # the 5 s shadow never delays the primary
        assert model.shadow is not None
        await model.shadow.close()
        return answers

    answers = asyncio.run(go())
    assert all(
        a == {"predictions": [pytest.approx(0.1003)], "model_version": "v1"} for a in answers
    )
