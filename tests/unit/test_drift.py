from __future__ import annotations

import numpy as np
import pytest

from berth.drift import DEFAULT_ALERT_PSI, DriftWindow, psi, reference_histogram


def _window(train: np.ndarray, size: int = 2000) -> DriftWindow:
    refs = [reference_histogram(train[:, j]) for j in range(train.shape[1])]
    return DriftWindow(["a", "b"], [r[0] for r in refs], [r[1] for r in refs], size=size)


def test_psi_zero_for_identical_and_large_for_shifted() -> None:
    expected = np.full(10, 0.1)
    assert psi(expected, np.full(10, 50)) == pytest.approx(0.0, abs=1e-12)
    shifted = np.array([0, 0, 0, 0, 0, 0, 0, 0, 50, 450])
    assert psi(expected, shifted) > 1.0


def test_discrete_feature_gets_deduplicated_edges() -> None:
    values = np.array([0] * 80 + [1] * 20, dtype=float)
    edges, proportions = reference_histogram(values)
    assert edges == [0.0, 1.0]
    assert proportions == pytest.approx([0.8, 0.2, 0.0])


def test_window_psi_low_on_training_like_high_on_shifted() -> None:
    rng = np.random.default_rng(0)
    train = np.column_stack([rng.normal(0, 1, 20000), rng.integers(0, 24, 20000)])
    window = _window(train)
    window.add(np.column_stack([rng.normal(0, 1, 3000), rng.integers(0, 24, 3000)]))
    assert window.rows == 2000
    assert max(window.psi().values()) < 0.05
    window.add(np.column_stack([rng.normal(1.5, 1, 3000), rng.integers(0, 24, 3000)]))
    drift = window.psi()
    assert drift["a"] > DEFAULT_ALERT_PSI
    assert drift["b"] < 0.05


def test_ring_buffer_keeps_only_the_newest_rows() -> None:
    rng = np.random.default_rng(1)
    train = np.column_stack([rng.normal(0, 1, 5000), rng.normal(0, 1, 5000)])
    window = _window(train, size=100)
    for _ in range(7):
        window.add(np.full((30, 2), 10.0))  # far above every edge: the top bin
    window.add(rng.normal(0, 1, (100, 2)))
    assert window.psi()["a"] < 0.5


def test_window_psi_is_the_psi_of_exactly_the_newest_rows_across_wraps() -> None:
    rng = np.random.default_rng(2)
    train = np.column_stack([rng.normal(0, 1, 5000), rng.integers(0, 24, 5000)])
    window = _window(train, size=97)
    served = [
        np.column_stack([rng.normal(k / 4, 1, n), rng.integers(0, 24, n)])
        for k, n in enumerate([40, 50, 13, 96, 1, 200, 33])
    ]
    for batch in served:
        window.add(batch)
    newest = np.concatenate(served)[-97:]
    refs = [reference_histogram(train[:, j]) for j in range(2)]
    for j, name in enumerate(["a", "b"]):
        edges, expected = np.asarray(refs[j][0]), np.asarray(refs[j][1])
        counts = np.bincount(np.searchsorted(edges, newest[:, j]), minlength=len(expected))
        assert window.psi()[name] == pytest.approx(psi(expected, counts), rel=1e-12)
