"""``:explain``: per-feature Shapley attributions of a served score, by batched predictor calls.

The model is a black box behind the predictor. A candidate's explanation compares its feature
row ``x`` with the baseline ``b``, the training defaults of the artifact (``metadata.json``:
each feature's median). The value of a coalition ``S`` of features is the score of the row
that takes ``x`` on ``S`` and ``b`` elsewhere; a feature's attribution is its Shapley value in
that game. Only features where ``x`` differs from ``b`` can change a coalition's row, so only
they enter the game (the others get exactly 0, which is their Shapley value too):

- ``k`` features differ and ``2**k`` fits the budget of predictor rows per candidate: every
  coalition is scored and the Shapley values are exact (``method: exact``);
- otherwise ``m`` random permutations (antithetic pairs: each with its reverse) are walked
  from ``b`` to ``x``, ``k - 1`` new rows each, and each feature's marginal contributions are
  averaged (``method: sampled``; Castro et al. 2009), ``k`` rows each, ``m = budget // k``
  (even, at least 2).

Either way the attributions add up to ``score - baseline_score`` exactly (up to float32),
because every permutation's marginals telescope. All rows of a request (one baseline row, each
candidate's coalitions) go to the predictor in calls of at most ``batch_rows`` rows; the seed
is fixed, so the same request gets the same explanation. Cost: at most ``budget`` predictor rows
per candidate plus one per request.

Explanations have their own in-flight bound (:class:`ExplainBound`, 429 naming
``BERTH_TRANSFORMER_EXPLAIN_MAX_INFLIGHT``) and deadline, so they cannot take the slots or the
time of ``:predict``.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from berth.errors import BerthError, DeadlineExceededError, OverloadedError

if TYPE_CHECKING:
    from berth.artifact import ArtifactMetadata
    from berth_transformer.settings import TransformerSettings

Score = Callable[[np.ndarray], Awaitable[np.ndarray]]
SETTING = "BERTH_TRANSFORMER_EXPLAIN_MAX_INFLIGHT"


class ExplainUnavailableError(BerthError):
    """The transformer has no baseline (no artifact metadata mounted): it cannot explain."""

    status = 501

    @property
    def client_message(self) -> str:
        return self.message


class ExplainBound:
    """Explanations in flight (one more is a 429) and their deadline (504)."""

    def __init__(self, max_inflight: int, deadline_s: float) -> None:
        self.max_inflight = max_inflight
        self.deadline_s = deadline_s
        self.inflight = 0

    @asynccontextmanager
    async def admit(self) -> AsyncIterator[None]:
        if self.inflight >= self.max_inflight:
            raise OverloadedError(
                f"more than {self.max_inflight} explanations in flight ({SETTING})"
            )
        self.inflight += 1
        try:
            async with asyncio.timeout(self.deadline_s):
                yield
        except TimeoutError:
            raise DeadlineExceededError("the explanation") from None
        finally:
            self.inflight -= 1


@dataclass
class _Plan:
    """The coalition rows of one candidate and how to turn their scores into attributions."""

    differing: np.ndarray  # feature indices where x != baseline
    masks: np.ndarray  # (rows, k) bool: which differing features take x's value
    method: str  # "exact" | "sampled"
    permutations: np.ndarray | None = None  # (m, k) for "sampled"


def plan(x: np.ndarray, baseline: np.ndarray, budget: int, rng: np.random.Generator) -> _Plan:
    differing = np.flatnonzero(x != baseline)
    k = len(differing)
    if k == 0:
        return _Plan(differing, np.ones((1, 0), bool), "exact")
    if 2**k <= budget:
        codes = np.arange(2**k)
        masks = ((codes[:, None] >> np.arange(k)) & 1).astype(bool)
        return _Plan(differing, masks, "exact")
    m = max(2, budget // k // 2 * 2)
    half = np.array([rng.permutation(k) for _ in range(m // 2)])
    perms = np.concatenate([half, half[:, ::-1]])
    # Walk each permutation: at step j its first j + 1 features take x's value.
    rank = np.argsort(perms, axis=1)  # rank[p, i]: the step at which feature i joins
    masks = rank[:, None, :] <= np.arange(k)[None, :, None]
    return _Plan(differing, masks.reshape(m * k, k), "sampled", perms)


def _exact(values: np.ndarray, k: int) -> np.ndarray:
    """Shapley values from the scores of all 2**k coalitions (index = bit mask)."""
    phi = np.zeros(k)
    sizes = np.array([bin(c).count("1") for c in range(2**k)])
    weights = np.array([math.factorial(s) * math.factorial(k - s - 1) for s in range(k)])
    weights = weights / math.factorial(k)
    for i in range(k):
        without = np.flatnonzero(((np.arange(2**k) >> i) & 1) == 0)
        phi[i] = np.sum(weights[sizes[without]] * (values[without | (1 << i)] - values[without]))
    return phi


def _sampled(values: np.ndarray, perms: np.ndarray, base_score: float) -> np.ndarray:
    m, k = perms.shape
    walk = values.reshape(m, k)
    previous = np.concatenate([np.full((m, 1), base_score), walk[:, :-1]], axis=1)
    phi = np.zeros(k)
    np.add.at(phi, perms.ravel(), (walk - previous).ravel())
    mean: np.ndarray = phi / m
    return mean


@dataclass(frozen=True)
class Explainer:
    """Explains candidate rows against ``baseline`` (training defaults, input column order)."""

    names: list[str]
    baseline: np.ndarray
    budget_rows: int
    batch_rows: int
    seed: int = 0

    async def explain(self, matrix: np.ndarray, score: Score) -> list[dict[str, Any]]:
        rng = np.random.default_rng(self.seed)
        x_rows = matrix.astype(np.float32)
        base = self.baseline.astype(np.float32)
        plans = [plan(x, base, self.budget_rows, rng) for x in x_rows]
        blocks = [base[None, :]]
        for x, p in zip(x_rows, plans, strict=True):
            rows = np.repeat(base[None, :], len(p.masks), axis=0)
            cols = np.broadcast_to(p.differing, p.masks.shape)
            rows[:, p.differing] = np.where(p.masks, x[cols], base[cols])
            blocks.append(rows)
        scores = await self._score_all(np.concatenate(blocks), score)
        base_score = float(scores[0])
        out, offset = [], 1
        for p in plans:
            values = scores[offset : offset + len(p.masks)].astype(np.float64)
            offset += len(p.masks)
            out.append(self._one(p, values, base_score))
        return out

    def _one(self, p: _Plan, values: np.ndarray, base_score: float) -> dict[str, Any]:
        k = len(p.differing)
        if k == 0:
            phi, full = np.zeros(0), base_score
        elif p.method == "exact":
            values = values.copy()
            values[0] = base_score  # the empty coalition is the baseline row
            phi, full = _exact(values, k), float(values[-1])
        else:
            assert p.permutations is not None
            phi, full = _sampled(values, p.permutations, base_score), float(values[k - 1])
        attributions = dict.fromkeys(self.names, 0.0)
        for index, value in zip(p.differing, phi, strict=True):
            attributions[self.names[index]] = round(float(value), 6)
        return {
            "score": round(full, 6),
            "baseline_score": round(base_score, 6),
            "attributions": attributions,
            "method": p.method if k else "exact",
            "predictor_rows": len(p.masks),
        }

    async def _score_all(self, rows: np.ndarray, score: Score) -> np.ndarray:
        chunks = [rows[i : i + self.batch_rows] for i in range(0, len(rows), self.batch_rows)]
        parts = [await score(chunk) for chunk in chunks]
        return np.concatenate(parts)


def make_explainer(
    artifact: ArtifactMetadata | None, columns: list[str], settings: TransformerSettings
) -> Explainer | None:
    """The explainer of the served columns; None without the artifact's training defaults."""
    if artifact is None:
        return None
    defaults = {f.name: f.default for f in artifact.features}
    return Explainer(
        columns,
        np.array([defaults[c] for c in columns], np.float32),
        settings.explain_rows_per_candidate,
        settings.explain_batch_rows,
    )


def unavailable() -> ExplainUnavailableError:
    return ExplainUnavailableError(
        ":explain needs the artifact's training defaults as its baseline: set "
        "BERTH_TRANSFORMER_MODEL_METADATA"
    )
