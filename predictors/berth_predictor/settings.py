"""Predictor settings: environment variables ``BERTH_PREDICTOR_*``."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from berth.serving.settings import ServingSettings


class PredictorSettings(ServingSettings):
    """Everything the predictor reads from its environment; the chart only sets env vars."""

    model_config = SettingsConfigDict(env_prefix="BERTH_PREDICTOR_", extra="ignore")

    intra_op_threads: int = Field(default=1, ge=0)
    """ONNX Runtime intra-op threads (0: ORT's default, one per core)."""

    graph_optimization: Literal["disable", "basic", "extended", "all"] = "all"
    """ONNX Runtime graph optimization level."""

    batching: bool = True
    """Coalesce concurrent requests into one ORT run."""

    max_batch_rows: int = Field(default=256, ge=1)
    """Most rows in one ORT run."""

    max_batch_wait_ms: float = Field(default=0.0, ge=0)
    """How long a batch waits for more rows once it has some. 0: take what is queued when the
    previous run ends (an idle predictor answers at once; under load, requests that arrive
    during a run form the next batch)."""

    inline_max_rows: int = Field(default=256, ge=0)
    """Batches of at most this many rows run on the event loop instead of the ORT worker
    thread (for small models the thread hand-off costs more than the run). 0: always the
    thread; lower it for a model whose runs take milliseconds."""

    max_request_rows: int = Field(default=1024, ge=1)
    """Most rows one request may carry; more is a 400 naming the input."""

    max_inflight: int = Field(default=512, ge=1)
    """Requests in flight before new ones get 429 with Retry-After (gRPC RESOURCE_EXHAUSTED)."""

    max_request_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    """Largest request body (REST: 413 naming this setting) and gRPC message (the gRPC
    server's max receive size; larger is RESOURCE_EXHAUSTED)."""

    warmup_runs: int = Field(default=20, ge=1)
    """ORT runs at max_batch_rows before the model reports ready."""

    enable_trace_logs: bool = False
    """KServe's per-request trace line (costs about a third of the throughput)."""

    fault_latency_ms: float = Field(default=0.0, ge=0, le=60_000)
    """TEST/BENCHMARK HOOK, never for production: sleep this long in every predict (0: off).
    Exists only so ``python -m benchmarks canary`` can run a canary slower by a known amount."""

    fault_error_rate: float = Field(default=0.0, ge=0, le=1)
    """TEST/BENCHMARK HOOK, never for production: fail this share of predicts with a 500
    (0: off). Exists only so ``python -m benchmarks canary`` can run a canary with a known
    extra error rate."""

    verify_key: Path | None = None
    """EC public key (PEM) the artifact's signature (``model.sig``, ``berth sign``) must verify
    with. Set: the predictor refuses to start (one JSON log line, exit 1) on an unsigned,
    tampered or differently signed artifact. Unset: digests only."""
