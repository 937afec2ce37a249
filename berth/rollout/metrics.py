"""What primary and canary did: request counts, error counts and latency histograms per model
version, and the shadow-delta histogram, from Prometheus or from the pods' ``/metrics``.

Both sources yield bucket counts; error rates and quantiles are computed here from them, the
quantile exactly as PromQL's ``histogram_quantile`` does (linear within the bucket). Prometheus
gives counts over the policy's window (``increase(...[window])``); a scrape gives the totals
since each pod started, summed over the URLs given.
"""

from __future__ import annotations

import json
import math
import re
import urllib.error
import urllib.parse
import urllib.request
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from berth.rollout.errors import RolloutError
from berth.rollout.policy import RolloutPolicy

INF = math.inf
Sample = tuple[dict[str, str], float]


def histogram_quantile(q: float, buckets: dict[float, float]) -> float | None:
    """The ``q`` quantile of cumulative ``buckets`` (upper bound -> count, with +Inf).

    Prometheus's algorithm: find the bucket holding rank ``q * total``, interpolate linearly
    between its bounds (from 0 for the first bucket when its bound is positive); a rank in the
    +Inf bucket answers the highest finite bound. None without observations or a +Inf bucket.
    """
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"quantile {q} is outside 0..1")
    bounds = sorted(buckets)
    if len(bounds) < 2 or bounds[-1] != INF:
        return None
    counts, running = [], 0.0
    for bound in bounds:  # counts must not decrease (Prometheus repairs them the same way)
        running = max(running, buckets[bound])
        counts.append(running)
    total = counts[-1]
    if total <= 0:
        return None
    rank = q * total
    b = next(i for i, c in enumerate(counts) if c >= rank)
    if b == len(bounds) - 1:
        return bounds[-2]
    if b == 0 and bounds[0] <= 0:
        return bounds[0]
    start = 0.0 if b == 0 else bounds[b - 1]
    below = 0.0 if b == 0 else counts[b - 1]
    in_bucket = counts[b] - below
    if in_bucket <= 0:
        return bounds[b]
    return start + (bounds[b] - start) * (rank - below) / in_bucket


@dataclass
class VersionStats:
    """One model version's requests, errors and latency buckets (seconds)."""

    requests: float = 0.0
    errors: float = 0.0
    buckets: dict[float, float] = field(default_factory=lambda: defaultdict(float))

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests > 0 else None

    @property
    def p99_s(self) -> float | None:
        return histogram_quantile(0.99, self.buckets)


@dataclass
class Observed:
    """Stats per model version, and the shadow-delta buckets (empty without a shadow)."""

    versions: dict[str, VersionStats] = field(default_factory=dict)
    shadow: dict[float, float] = field(default_factory=lambda: defaultdict(float))
    source: str = ""

    @property
    def shadow_rows(self) -> float:
        return self.shadow.get(INF, 0.0)

    @property
    def shadow_delta_p99(self) -> float | None:
        return histogram_quantile(0.99, self.shadow)


def accumulate(
    requests: Iterable[Sample], shadow: Iterable[Sample], policy: RolloutPolicy, source: str
) -> Observed:
    """Fold ``_bucket`` samples (labels incl. ``le``, value) into :class:`Observed`."""
    names = policy.metrics
    is_error = re.compile(names.error_outcomes)
    out = Observed(source=source)
    for labels, value in requests:
        if math.isnan(value) or "le" not in labels:
            continue
        version = labels.get(names.version_label, "")
        stats = out.versions.setdefault(version, VersionStats())
        le = float(labels["le"])
        stats.buckets[le] += value
        if le == INF:
            stats.requests += value
            if is_error.fullmatch(labels.get(names.outcome_label, "")):
                stats.errors += value
    for labels, value in shadow:
        if not math.isnan(value) and "le" in labels:
            out.shadow[float(labels["le"])] += value
    return out


# -- Prometheus ---------------------------------------------------------------------------------


def _get(url: str, timeout_s: float) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:
            body: bytes = resp.read()
            return body
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")[:300]
        raise RolloutError(f"GET {url}: HTTP {exc.code} {detail}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise RolloutError(f"GET {url}: {exc}") from exc


def prometheus_query(base_url: str, promql: str, timeout_s: float = 10.0) -> list[Sample]:
    """An instant vector from Prometheus's HTTP API ``/api/v1/query``."""
    url = base_url.rstrip("/") + "/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    try:
        doc = json.loads(_get(url, timeout_s))
    except json.JSONDecodeError as exc:
        raise RolloutError(f"Prometheus at {base_url} did not answer JSON") from exc
    if doc.get("status") != "success":
        raise RolloutError(f"Prometheus query failed: {doc.get('error', doc)}")
    data = doc.get("data") or {}
    if data.get("resultType") != "vector":
        raise RolloutError(f"Prometheus answered {data.get('resultType')!r}, not a vector")
    return [(r["metric"], float(r["value"][1])) for r in data.get("result") or []]


def queries(policy: RolloutPolicy) -> tuple[str, str]:
    """The two PromQL queries: request buckets by version and outcome, shadow-delta buckets."""
    m, w = policy.metrics, policy.window
    requests = (
        f"sum by ({m.version_label}, {m.outcome_label}, le) "
        f"(increase({m.request_histogram}_bucket[{w}]))"
    )
    shadow = f"sum by (le) (increase({m.shadow_delta_histogram}_bucket[{w}]))"
    return requests, shadow


def from_prometheus(base_url: str, policy: RolloutPolicy, timeout_s: float = 10.0) -> Observed:
    requests, shadow = queries(policy)
    return accumulate(
        prometheus_query(base_url, requests, timeout_s),
        prometheus_query(base_url, shadow, timeout_s),
        policy,
        source=f"prometheus {base_url} (last {policy.window})",
    )


# -- /metrics scrapes ---------------------------------------------------------------------------


def parse_exposition(text: str, metric: str) -> list[Sample]:
    """``<metric>_bucket`` samples of a Prometheus text exposition."""
    try:
        from berth.scrape import parse
    except ImportError as exc:
        raise RolloutError("--scrape needs prometheus-client: pip install 'berth[serve]'") from exc
    try:
        return [(dict(s.labels), float(s.value)) for s in parse(text).select(f"{metric}_bucket")]
    except ValueError as exc:
        raise RolloutError(f"unreadable /metrics text: {exc}") from exc


def from_scrapes(urls: list[str], policy: RolloutPolicy, timeout_s: float = 10.0) -> Observed:
    requests: list[Sample] = []
    shadow: list[Sample] = []
    for url in urls:
        text = _get(url, timeout_s).decode()
        requests += parse_exposition(text, policy.metrics.request_histogram)
        shadow += parse_exposition(text, policy.metrics.shadow_delta_histogram)
    return accumulate(
        requests, shadow, policy, source=f"{len(urls)} scrape(s), totals since pod start"
    )
