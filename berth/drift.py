"""Feature drift: a reference histogram per feature from training, PSI over served values.

The build records, per feature, bin edges (training deciles, de-duplicated) and the training
proportion of each bin. A serving process keeps the last ``size`` served rows in a ring
buffer and reports the Population Stability Index per feature::

    PSI = sum_b (actual_b - expected_b) * ln(actual_b / expected_b)

Common reading: < 0.1 stable, 0.1-0.25 moderate shift, > 0.25 major shift.
"""

from __future__ import annotations

import threading

import numpy as np

EPSILON = 1e-4
DEFAULT_ALERT_PSI = 0.25


def bin_index(edges: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Bin b holds edges[b-1] < x <= edges[b]; the last bin is everything above the top edge."""
    return np.searchsorted(edges, values, side="left")


def reference_histogram(values: np.ndarray, bins: int = 10) -> tuple[list[float], list[float]]:
    """(edges, proportions) of ``values`` on its quantile edges; len(proportions) = len(edges)+1."""
    edges = np.unique(np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1], method="lower"))
    counts = np.bincount(bin_index(edges, values), minlength=len(edges) + 1)
    return [float(e) for e in edges], [float(c) for c in counts / counts.sum()]


def psi(expected: np.ndarray, counts: np.ndarray) -> float:
    """PSI of observed bin ``counts`` against ``expected`` proportions (smoothed by EPSILON)."""
    total = counts.sum()
    if total == 0:
        return 0.0
    actual = np.clip(counts / total, EPSILON, None)
    expected = np.clip(expected, EPSILON, None)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


class DriftWindow:
    """The last ``size`` served rows; thread-safe.

    ``add`` only copies the rows into a ring buffer (it runs on every request); binning and
    PSI happen in ``psi``, which the metrics scrape calls at most once per refresh.
    """

    def __init__(
        self,
        names: list[str],
        edges: list[list[float]],
        proportions: list[list[float]],
        size: int = 5000,
    ) -> None:
        self.names = names
        self._edges = [np.asarray(e, dtype=np.float64) for e in edges]
        self._expected = [np.asarray(p, dtype=np.float64) for p in proportions]
        self._values = np.zeros((size, len(names)), dtype=np.float64)
        self._size = size
        self._next = 0
        self._filled = 0
        self._lock = threading.Lock()

    def add(self, rows: np.ndarray) -> None:
        """Record served rows (shape [n, features], the model's input order)."""
        rows = rows[-self._size :]
        n = len(rows)
        with self._lock:
            start, end = self._next, self._next + n
            if end <= self._size:
                self._values[start:end] = rows
            else:
                split = self._size - start
                self._values[start:] = rows[:split]
                self._values[: n - split] = rows[split:]
            self._next = end % self._size
            self._filled = min(self._size, self._filled + n)

    @property
    def rows(self) -> int:
        return self._filled

    def psi(self) -> dict[str, float]:
        with self._lock:
            window = self._values[: self._filled].copy()
        return {
            name: psi(
                self._expected[j],
                np.bincount(
                    bin_index(self._edges[j], window[:, j]), minlength=len(self._expected[j])
                ),
            )
            for j, name in enumerate(self.names)
        }
