"""Prometheus metrics of the transformer, served by KServe's ``/metrics`` (default registry)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from berth.serving.metrics import LabelCache

_FAST = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
# Per-version latency, which the canary analysis compares: 1 ms steps up to 6 ms and finer
# steps to 50 ms, so a few milliseconds' regression moves requests across bucket bounds.
_VERSIONED = (
    *(0.001, 0.002, 0.003, 0.004, 0.005, 0.006, 0.008, 0.01, 0.0125, 0.015, 0.02, 0.025),
    *(0.03, 0.04, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5),
)

FEATURE_READ_SECONDS = LabelCache(
    Histogram(
        "berth_transformer_feature_read_seconds",
        "One batched online-store read (all entities of a request), by outcome.",
        ["outcome"],
        buckets=_FAST,
    )
)
FEATURES_MISSING = Counter(
    "berth_transformer_features_missing_total",
    "Candidate rows whose feature view had no value, by view and action (filled|rejected).",
    ["view", "action"],
)
FEATURES_STALE = Counter(
    "berth_transformer_features_stale_total",
    "Candidate rows whose value was older than the view's TTL, by view and action.",
    ["view", "action"],
)
FEATURES_UNREADABLE = Counter(
    "berth_transformer_features_unreadable_total",
    "Stored values no feature can hold (undecodable, non-finite, beyond float32), by view.",
    ["view"],
)
ALL_MISSING = Counter(
    "berth_transformer_all_missing_total",
    "Requests none of whose entities had stored features (answered 503).",
)
PREDICTOR_RETRIES = Counter(
    "berth_transformer_predictor_retries_total",
    "Predictor calls sent again after failing unanswered (UNAVAILABLE, a refused or reset"
    " connection, 502/503; a retry goes over a fresh gRPC channel or a new REST connection).",
)
PREDICTOR_CALL_SECONDS = LabelCache(
    Histogram(
        "berth_transformer_predictor_call_seconds",
        "Calls to the predictor, by protocol (grpc-v2|v2) and outcome (HTTP status).",
        ["protocol", "outcome"],
        buckets=_FAST,
    )
)
REQUEST_SECONDS = LabelCache(
    Histogram(
        "berth_transformer_request_seconds",
        "End-to-end latency inside the transformer, by client protocol (v1|v2|grpc-v2) and outcome"
        " (HTTP status).",
        ["protocol", "outcome"],
        buckets=_FAST,
    )
)
CANDIDATES = Histogram(
    "berth_transformer_candidates",
    "Candidates (rows) per request.",
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500),
)
REJECTED = Counter(
    "berth_transformer_rejected_total",
    "Requests refused before any work, by reason (overload: 429, draining: 503).",
    ["reason"],
)
# --- canary and shadow (issue 6) ---------------------------------------------------------
ROUTED = LabelCache(
    Counter(
        "berth_transformer_routed_total",
        "Requests sent to a predictor, by target (primary|canary) and model version.",
        ["target", "model_version"],
    )
)
MODEL_REQUESTS = LabelCache(
    Counter(
        "berth_transformer_model_requests_total",
        "Requests by the model version that answered (or was chosen) and outcome (HTTP status).",
        ["model_version", "outcome"],
    )
)
MODEL_REQUEST_SECONDS = LabelCache(
    Histogram(
        "berth_transformer_model_request_seconds",
        "End-to-end latency inside the transformer, by model version and outcome (HTTP status).",
        ["model_version", "outcome"],
        buckets=_VERSIONED,
    )
)
SHADOW_DELTA = Histogram(
    "berth_transformer_shadow_delta",
    "|primary score - shadow score| per row (scores are probabilities 0..1).",
    buckets=(0.0001, 0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0),
)
SHADOW_DROPPED = Counter(
    "berth_transformer_shadow_dropped_total",
    "Shadow copies dropped because the shadow queue was full.",
)
SHADOW_ERRORS = Counter(
    "berth_transformer_shadow_errors_total",
    "Shadow calls that failed (error, timeout, wrong shape); the primary answer is unaffected.",
)
# --- data contract (issue 15) -------------------------------------------------------------
CONTRACT_VIOLATIONS = Counter(
    "berth_transformer_contract_violations_total",
    "Served values from the online store outside the artifact's data contract, by feature and"
    " rule (range|allowed); each was filled with the training default or rejected (503).",
    ["feature", "rule"],
)
