"""Feature drift of served traffic: PSI per feature as ``berth_transformer_feature_psi``.

Each request's feature matrix (what the predictor scores, defaults included) goes into a
:class:`~berth.drift.DriftWindow`: a copy into a ring buffer, nothing more. Binning and PSI
against the artifact's training histograms happen on scrape of ``/metrics``, at most once per
``refresh_s``, in a collector on the default registry: the request path never pays for them.
Below ``min_rows`` served rows there is no PSI at all (a PSI of a dozen rows is noise: every
feature read 1.35-8.29 after 12 rows), only the row count and the minimum, so ``berth drift``
and the chart's alert can say how far the window is from evidence.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence

import numpy as np
from prometheus_client import REGISTRY
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from berth.artifact import ArtifactMetadata
from berth.drift import DriftWindow

PSI_METRIC = "berth_transformer_feature_psi"
ROWS_METRIC = "berth_transformer_drift_window_rows"
MIN_ROWS_METRIC = "berth_transformer_drift_min_rows"


class DriftMonitor(Collector):
    """A window over served rows and the PSI gauges it exports."""

    def __init__(self, window: DriftWindow, refresh_s: float, min_rows: int = 1) -> None:
        self.window = window
        self.refresh_s = refresh_s
        self.min_rows = min_rows
        self._psi: dict[str, float] = {}
        self._at = float("-inf")

    def observe(self, matrix: np.ndarray) -> None:
        if len(matrix):
            self.window.add(matrix)

    def psi(self) -> dict[str, float]:
        """PSI per feature, recomputed when older than ``refresh_s``."""
        now = time.monotonic()
        if now - self._at >= self.refresh_s:
            enough = self.window.rows >= max(1, self.min_rows)
            self._psi = self.window.psi() if enough else {}
            self._at = now
        return self._psi

    def collect(self) -> Iterator[GaugeMetricFamily]:
        psi = GaugeMetricFamily(
            PSI_METRIC,
            "Population Stability Index of each served feature over the last window of rows "
            "against its training histogram (>0.25: major shift).",
            labels=["feature"],
        )
        for name, value in self.psi().items():
            psi.add_metric([name], value)
        yield psi
        yield GaugeMetricFamily(
            ROWS_METRIC, "Served rows in the drift window.", value=self.window.rows
        )
        yield GaugeMetricFamily(
            MIN_ROWS_METRIC,
            "Rows the drift window needs before any PSI is exported "
            "(BERTH_TRANSFORMER_DRIFT_MIN_ROWS).",
            value=self.min_rows,
        )


def open_monitor(
    artifact: ArtifactMetadata | None,
    columns: Sequence[str],
    size: int,
    refresh_s: float,
    min_rows: int = 1,
) -> DriftMonitor | None:
    """A registered monitor over ``columns`` (the matrix order), or None without references."""
    if artifact is None or size <= 0:
        return None
    specs = {f.name: f for f in artifact.features}
    if any(c not in specs or not specs[c].reference_proportions for c in columns):
        return None
    chosen = [specs[c] for c in columns]
    window = DriftWindow(
        list(columns),
        [f.reference_edges for f in chosen],
        [f.reference_proportions for f in chosen],
        size,
    )
    global _registered
    if _registered is not None:  # a second load() in one process replaces the first
        REGISTRY.unregister(_registered)
    _registered = DriftMonitor(window, refresh_s, min(min_rows, size))
    REGISTRY.register(_registered)
    return _registered


_registered: DriftMonitor | None = None
