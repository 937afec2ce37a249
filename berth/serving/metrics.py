"""What ``/metrics`` exports in both containers: Berth's series, and nothing that repeats them
or never moves.

- No ``*_created`` samples (``prometheus_client.disable_created_metrics``, what
  ``PROMETHEUS_DISABLE_CREATED_SERIES=true`` does when set before the import): one extra
  sample per counter and histogram child that no query reads.
- No ``feast_*`` series: Feast registers its metrics on the default registry at import
  (feast/metrics.py) though nothing here runs its metrics server, so they stay at zero.
- No KServe ``request_{preprocess,predict,postprocess,explain}_seconds`` (kserve/metrics.py):
  they time the same calls as ``berth_predictor_request_seconds`` /
  ``berth_transformer_request_seconds`` (by protocol and outcome) and the per-version
  ``berth_transformer_model_request_seconds`` that canary analysis reads. Nothing observes
  them either: Berth's models run their handlers themselves
  (:meth:`berth.serving.served_model.ServedModel.run_handlers`).

The transformer keeps two Berth histograms of its end-to-end latency on purpose, cut by
different labels: ``berth_transformer_request_seconds`` by client protocol (the SLO alerts and
dashboard) and ``berth_transformer_model_request_seconds`` by model version (canary analysis).
Every label value comes from a fixed set (protocols, HTTP statuses, the served versions, the
FeatureService's views): nothing a client sends becomes a label, so :class:`LabelCache` keeps
each labelled child once (``labels()`` builds and checks the tuple on every call, ~1 us).
"""

from __future__ import annotations

import sys
from typing import Any

from prometheus_client import REGISTRY, disable_created_metrics
from prometheus_client.metrics import MetricWrapperBase

from berth.observability import get_logger

log = get_logger(__name__)


def tidy_registry() -> list[str]:
    """Turn off what the module docstring lists; the names of the metrics taken out."""
    disable_created_metrics()  # type: ignore[no-untyped-call]
    removed: list[str] = []
    for module in ("kserve.metrics", "feast.metrics"):
        loaded = sys.modules.get(module)
        for value in vars(loaded).values() if loaded is not None else ():
            if isinstance(value, MetricWrapperBase):
                try:
                    REGISTRY.unregister(value)
                except KeyError:  # not registered (already taken out)
                    continue
                removed.append(value._name)
    log.debug("metrics taken out of /metrics", names=removed)
    return removed


class LabelCache:
    """A labelled metric's children by label values, each bound once: ``labels(*values)``
    as ``metric.labels`` answers it, from a dict after the first call. Label values come from
    fixed sets (module doc), so the dict stays small. Wrap a metric where it is defined
    (``REQUEST_SECONDS = LabelCache(Histogram(...))``), so every caller shares the cache."""

    def __init__(self, metric: MetricWrapperBase) -> None:
        self.metric = metric
        self._children: dict[tuple[str, ...], Any] = {}

    def labels(self, *values: str) -> Any:
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = self.metric.labels(*values)
        return child
