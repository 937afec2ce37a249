"""Prometheus metrics of the predictor (served at ``/metrics`` by KServe's registry)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from berth.serving.metrics import LabelCache

_FAST = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)

REQUEST_SECONDS = LabelCache(
    Histogram(
        "berth_predictor_request_seconds",
        "Request latency from body decoding to the answer, by protocol (v1, v2, v2-binary, "
        "grpc-v2) and outcome (HTTP status; gRPC codes as their HTTP equivalent).",
        ["protocol", "outcome"],
        buckets=_FAST,
    )
)
BATCH_ROWS = Histogram(
    "berth_predictor_batch_rows",
    "Rows per ONNX Runtime run.",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
)
QUEUE_SECONDS = Histogram(
    "berth_predictor_queue_wait_seconds", "Time a request waited for its batch.", buckets=_FAST
)
RUN_SECONDS = Histogram(
    "berth_predictor_ort_run_seconds", "ONNX Runtime run time per batch.", buckets=_FAST
)
ROWS = Counter("berth_predictor_rows_total", "Rows scored.")
INFLIGHT = Gauge("berth_predictor_inflight_requests", "Requests in flight.")
REJECTED = Counter("berth_predictor_rejected_total", "Requests refused for overload.")
MODEL_INFO = Gauge(
    "berth_predictor_model_info",
    "The served model (value 1).",
    ["name", "version", "feature_service"],
)
