"""Read a server's Prometheus ``/metrics``: one scraper on ``prometheus_client``'s text parser.

:func:`scrape` fetches ``<base>/metrics`` and parses it into :class:`Metrics`, which answers
the questions every reader asks: one series' value (:meth:`Metrics.value`), the sum over the
series that carry some labels (:meth:`Metrics.total`), every series of a name
(:meth:`Metrics.select`). Counters' samples keep their ``_total`` name, histograms'
``_bucket`` / ``_sum`` / ``_count`` theirs, as in the text.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

__all__ = ["Metrics", "Sample", "metrics_url", "parse", "scrape", "series"]


def metrics_url(url: str) -> str:
    """``url`` if it already names ``/metrics``, else ``<url>/metrics``."""
    url = url.rstrip("/")
    return url if url.endswith("/metrics") else f"{url}/metrics"


def series(sample: Sample) -> str:
    """A sample's series as the text writes it: ``name{label="value",...}``."""
    if not sample.labels:
        return sample.name
    labels = ",".join(f'{k}="{v}"' for k, v in sample.labels.items())
    return f"{sample.name}{{{labels}}}"


@dataclass(frozen=True)
class Metrics:
    """The samples of one exposition, in text order."""

    samples: tuple[Sample, ...]

    def __iter__(self) -> Iterator[Sample]:
        return iter(self.samples)

    def select(self, name: str, **labels: str) -> list[Sample]:
        """Samples named ``name`` whose labels include ``labels``."""
        return [
            s
            for s in self.samples
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
        ]

    def total(self, name: str, **labels: str) -> float:
        """Sum of the matching samples (0.0 when none): a counter over all its other labels."""
        return float(sum(s.value for s in self.select(name, **labels)))

    def value(self, name: str, **labels: str) -> float | None:
        """The first matching sample's value, or ``None``."""
        found = self.select(name, **labels)
        return float(found[0].value) if found else None

    def by_series(self) -> dict[str, float]:
        """``{series: value}`` of every sample (see :func:`series`)."""
        return {series(s): float(s.value) for s in self.samples}


def parse(text: str) -> Metrics:
    """Parse Prometheus text; ``ValueError`` on text that is not an exposition."""
    return Metrics(
        tuple(s for family in text_string_to_metric_families(text) for s in family.samples)
    )


def scrape(url: str, timeout_s: float = 5.0) -> Metrics:
    """GET ``<url>/metrics`` (or ``url`` itself when it ends in ``/metrics``) and parse it.
    ``OSError`` (``urllib.error.URLError``) when unreachable."""
    with urllib.request.urlopen(metrics_url(url), timeout=timeout_s) as resp:
        return parse(resp.read().decode())
