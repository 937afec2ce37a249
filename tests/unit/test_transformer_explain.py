"""Shapley attributions of berth_transformer.explain against a brute-force computation on a
known function (pure logic; the real stack is in tests/integration/test_explain_serving.py)."""

from __future__ import annotations

import asyncio
import itertools
import math

import numpy as np
import pytest

from berth.errors import DeadlineExceededError, OverloadedError
from berth_transformer.explain import ExplainBound, Explainer

D = 12
RNG = np.random.default_rng(5)
W = RNG.normal(size=D)
W2 = RNG.normal(size=(D, D)) * 0.3


def model(rows: np.ndarray) -> np.ndarray:
    z = rows @ W + 0.1 * np.einsum("ni,ij,nj->n", rows, W2, rows)
    out: np.ndarray = (1 / (1 + np.exp(-z))).astype(np.float32)
    return out


def brute_force(x: np.ndarray, base: np.ndarray) -> np.ndarray:
    idx = [int(i) for i in np.flatnonzero(x != base)]

    def value(coalition: tuple[int, ...]) -> float:
        row = base.copy()
        row[list(coalition)] = x[list(coalition)]
        return float(model(row[None])[0])

    phi = np.zeros(len(x))
    k = len(idx)
    for i in idx:
        for s in range(k):
            for others in itertools.combinations([j for j in idx if j != i], s):
                weight = math.factorial(s) * math.factorial(k - s - 1) / math.factorial(k)
                phi[i] += weight * (value((*others, i)) - value(others))
    return phi


def _explain(explainer: Explainer, rows: np.ndarray) -> tuple[list[dict], list[int]]:  # type: ignore[type-arg]
    calls: list[int] = []

    async def score(chunk: np.ndarray) -> np.ndarray:
        calls.append(len(chunk))
        return model(chunk)

    return asyncio.run(explainer.explain(rows, score)), calls


def test_exact_when_the_coalitions_fit_the_budget() -> None:
    base = RNG.normal(size=D).astype(np.float32)
    x = base.copy()
    x[[0, 3, 7, 8, 11]] += RNG.normal(size=5).astype(np.float32)
    names = [f"f{i}" for i in range(D)]
    [out], calls = _explain(Explainer(names, base, budget_rows=64, batch_rows=10), x[None])
    assert out["method"] == "exact" and out["predictor_rows"] == 32
    assert calls == [10, 10, 10, 3]  # baseline row + 32 coalitions, in calls of <= 10 rows
    expected = brute_force(x, base)
    got = np.array([out["attributions"][n] for n in names])
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert out["score"] == pytest.approx(float(model(x[None])[0]), abs=1e-6)
    assert out["baseline_score"] == pytest.approx(float(model(base[None])[0]), abs=1e-6)


def test_sampled_stays_additive_within_budget_and_near_exact() -> None:
    base = RNG.normal(size=D).astype(np.float32)
    rows = (base + RNG.normal(size=(3, D))).astype(np.float32)
    names = [f"f{i}" for i in range(D)]
    out, _ = _explain(Explainer(names, base, budget_rows=2400, batch_rows=4096), rows)
    for x, explanation in zip(rows, out, strict=True):
        assert explanation["method"] == "sampled"
        assert explanation["predictor_rows"] <= 2400
        total = sum(explanation["attributions"].values())
        assert total == pytest.approx(
            explanation["score"] - explanation["baseline_score"], abs=1e-5
        )
        got = np.array([explanation["attributions"][n] for n in names])
        assert np.max(np.abs(got - brute_force(x, base))) < 0.03


def test_same_request_same_explanation_and_baseline_candidate_is_all_zero() -> None:
    base = RNG.normal(size=D).astype(np.float32)
    rows = np.stack([base, (base + 1).astype(np.float32)])
    explainer = Explainer([f"f{i}" for i in range(D)], base, budget_rows=100, batch_rows=64)
    first, _ = _explain(explainer, rows)
    again, _ = _explain(explainer, rows)
    assert first == again
    assert set(first[0]["attributions"].values()) == {0.0}
    assert first[0]["score"] == first[0]["baseline_score"]


def test_bound_refuses_one_more_and_bounds_time() -> None:
    async def scenario() -> None:
        bound = ExplainBound(max_inflight=1, deadline_s=0.05)
        async with bound.admit():
            with pytest.raises(OverloadedError, match="EXPLAIN_MAX_INFLIGHT"):
                async with bound.admit():
                    pass
        assert bound.inflight == 0
        with pytest.raises(DeadlineExceededError):
            async with bound.admit():
                await asyncio.sleep(1)
        assert bound.inflight == 0

    asyncio.run(scenario())
