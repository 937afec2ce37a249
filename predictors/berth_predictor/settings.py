"""Predictor settings: environment variables ``BERTH_PREDICTOR_*``."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class PredictorSettings(BaseSettings):
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

    max_batch_wait_ms: float = Field(default=0.5, ge=0)
    """How long a batch waits for more rows once it has some (0: take what is queued)."""

    max_request_rows: int = Field(default=1024, ge=1)
    """Most rows one request may carry; more is a 400 naming the input."""

    max_inflight: int = Field(default=512, ge=1)
    """Requests in flight before new ones get 429 with Retry-After."""

    warmup_runs: int = Field(default=20, ge=1)
    """ORT runs at max_batch_rows before the model reports ready."""

    log_level: str = "INFO"
    """Log level of the JSON logs."""

    enable_trace_logs: bool = False
    """KServe's per-request trace line (costs about a third of the throughput)."""
