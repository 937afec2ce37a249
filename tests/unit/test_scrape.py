"""berth.scrape against a real prometheus_client registry, in text and over HTTP."""

from __future__ import annotations

import urllib.error
from collections.abc import Iterator

import pytest
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    start_http_server,
)

from berth.scrape import Metrics, metrics_url, parse, scrape, series
from berth.stack import LOOPBACK, free_port


@pytest.fixture
def registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    requests = Counter("demo_requests", "requests", ["protocol", "outcome"], registry=registry)
    requests.labels("v1", "200").inc(3)
    requests.labels("v1", "503").inc(2)
    requests.labels("grpc", "200").inc(5)
    Gauge("demo_rows", "rows", registry=registry).set(42)
    latency = Histogram("demo_seconds", "latency", ["stage"], buckets=(0.1, 1.0), registry=registry)
    latency.labels("read").observe(0.05)
    latency.labels("read").observe(0.5)
    return registry


def test_counters_sum_over_the_labels_not_named(registry: CollectorRegistry) -> None:
    metrics = parse(generate_latest(registry).decode())
    assert metrics.total("demo_requests_total") == 10
    assert metrics.total("demo_requests_total", outcome="200") == 8
    assert metrics.value("demo_requests_total", protocol="v1", outcome="503") == 2
    assert metrics.value("demo_requests_total", protocol="v2") is None
    assert metrics.total("demo_requests_total", protocol="v2") == 0.0


def test_gauges_and_histogram_series_keep_their_text_names(registry: CollectorRegistry) -> None:
    metrics = parse(generate_latest(registry).decode())
    assert metrics.value("demo_rows") == 42
    buckets = {s.labels["le"]: s.value for s in metrics.select("demo_seconds_bucket", stage="read")}
    assert buckets == {"0.1": 1, "1.0": 2, "+Inf": 2}
    assert metrics.value("demo_seconds_count", stage="read") == 2
    by_series = metrics.by_series()
    assert by_series['demo_seconds_sum{stage="read"}'] == pytest.approx(0.55)
    assert by_series["demo_rows"] == 42
    assert series(metrics.select("demo_requests_total", protocol="grpc")[0]) == (
        'demo_requests_total{outcome="200",protocol="grpc"}'
    )


def test_text_that_is_not_an_exposition_is_refused() -> None:
    with pytest.raises(ValueError, match="could not convert"):
        parse("demo_rows{oops 1\n")
    assert parse("") == Metrics(())


@pytest.fixture
def served(registry: CollectorRegistry) -> Iterator[str]:
    port = free_port()
    server, thread = start_http_server(port, LOOPBACK, registry)
    yield f"http://{LOOPBACK}:{port}"
    server.shutdown()
    thread.join(5)


def test_scrape_reads_a_live_metrics_endpoint(served: str) -> None:
    assert scrape(served).total("demo_requests_total") == 10
    assert scrape(served + "/metrics/").value("demo_rows") == 42
    assert metrics_url(served + "/") == served + "/metrics"


def test_scrape_of_nothing_listening_is_an_os_error() -> None:
    with pytest.raises(urllib.error.URLError):
        scrape(f"http://{LOOPBACK}:{free_port()}", timeout_s=2)
