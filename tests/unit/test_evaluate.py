from __future__ import annotations

import numpy as np
import pytest

from berth.modelbuild.measures import auc, logloss


def test_auc_matches_pairwise_definition() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 300)
    scores = np.round(rng.random(300) + 0.3 * labels, 2)  # ties included
    pos, neg = scores[labels == 1], scores[labels == 0]
    pairwise = ((pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])).mean()
    assert auc(labels, scores) == pytest.approx(pairwise, abs=1e-12)
    assert auc(labels, -scores) == pytest.approx(1 - pairwise, abs=1e-12)


def test_logloss_of_perfect_and_uniform() -> None:
    labels = np.array([0, 1, 1, 0])
    assert logloss(labels, np.array([0.5] * 4)) == pytest.approx(np.log(2))
    assert logloss(labels, labels.astype(float)) < 1e-6
