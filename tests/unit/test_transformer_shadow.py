"""The shadow queue: bounded, drops and counts when full, never raises into the caller."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from prometheus_client import REGISTRY

from berth.errors import DependencyUnavailableError
from berth_transformer import routing
from berth_transformer.model import FeatureTransformer
from berth_transformer.predictor_client import Prediction
from berth_transformer.settings import TransformerSettings
from berth_transformer.shadow import Shadow, ShadowCopy
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
    assert 1 <= failing.calls <= 3  # queued copies may share a call
    assert sample("berth_transformer_shadow_errors_total") - errors == 3  # counted per copy


class EchoShadow(SlowShadow):
    """Scores each row as its first feature; records the rows of each call."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[int] = []

    async def infer(self, features: np.ndarray, request_id: str) -> Prediction:
        self.rows.append(len(features))
        await asyncio.sleep(0.01)
        return Prediction(features[:, 0].copy(), "v2-shadow")


def test_queued_copies_share_one_call_and_each_gets_its_own_deltas() -> None:
    echo = EchoShadow()
    shadow = Shadow(echo, queue_size=64, workers=1, max_rows=10)
    seen: list[list[np.ndarray] | None] = []
    compare = shadow.compare

    async def spy(copies: list[ShadowCopy]) -> list[np.ndarray] | None:
        seen.append(await compare(copies))
        return seen[-1]

    shadow.compare = spy  # type: ignore[method-assign]

    def copy_of(i: int, n: int) -> ShadowCopy:
        features = np.zeros((n, 2), np.float32)
        features[:, 0] = i  # shadow score of every row of copy i: i
        return ShadowCopy(features, np.full(n, 2 * i + 0.5, np.float32), f"c{i}", "v1")

    async def go() -> None:
        for i in range(8):
            assert shadow.submit(copy_of(i, 3))
        await shadow.drain()
        await shadow.close()

    asyncio.run(go())
    # 24 rows, at most 10 rows taken per call once a call holds 10: 4 copies (12 rows) per call.
    assert sum(echo.rows) == 24 and len(echo.rows) < 8 and max(echo.rows) <= 12
    deltas = [d for call in seen for d in (call or [])]
    assert len(deltas) == 8
    for i, delta in enumerate(deltas):  # copy i: |i - (2i + 0.5)| on each of its own rows
        np.testing.assert_allclose(delta, [i + 0.5] * 3)


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


def test_copies_arriving_within_the_linger_share_one_call() -> None:
    echo = EchoShadow()
    shadow = Shadow(echo, queue_size=64, workers=1, linger_s=0.2)

    async def go() -> None:
        for i in range(3):  # 10 ms apart, all inside the 200 ms linger of the first
            assert shadow.submit(
                ShadowCopy(np.full((3, 2), i, np.float32), np.zeros(3), f"l{i}", "v1")
            )
            await asyncio.sleep(0.01)
        await shadow.drain()
        await shadow.close()

    asyncio.run(go())
    assert echo.rows == [9]
