"""The rollout policy: thresholds ``berth rollout analyze`` holds the canary to (YAML file).

Unknown keys are errors (a misspelt threshold must not silently fall back to its default).
``policy.example.yaml`` beside this module documents every key.
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from berth.rollout.errors import RolloutError


class MetricNames(BaseModel):
    """Names of the transformer's metrics and labels the analysis reads."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    request_histogram: str = Field(default="berth_transformer_model_request_seconds", min_length=1)
    """Request latency histogram (seconds), labelled by model version and outcome."""

    shadow_delta_histogram: str = Field(default="berth_transformer_shadow_delta", min_length=1)
    """Histogram of |primary score - shadow score| per row."""

    version_label: str = Field(default="model_version", min_length=1)
    """Label that names the model version which answered."""

    outcome_label: str = Field(default="outcome", min_length=1)
    """Label with the request's outcome (the transformer writes the HTTP status)."""

    error_outcomes: str = Field(default="5..|server_error", min_length=1)
    """Regular expression (full match, RE2 syntax for PromQL) of outcomes counted as errors.
    Client errors (4xx) are the caller's, not the model's."""

    @field_validator("error_outcomes")
    @classmethod
    def _regex(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from exc
        return value


class RolloutPolicy(BaseModel):
    """Thresholds for promote / hold / rollback."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    primary_version: str | None = None
    """Model version of the primary (the ``model_version`` label); or ``--primary-version``."""

    canary_version: str | None = None
    """Model version of the canary; or ``--canary-version``."""

    window: str = Field(default="10m", pattern=r"^[1-9][0-9]*[smhd]$")
    """PromQL range the Prometheus queries look back over (scrapes count since pod start)."""

    min_samples: int = Field(default=200, ge=1)
    """Observations each side (requests; shadow rows) before a signal may vote; below: hold."""

    alpha: float = Field(default=0.01, gt=0.0, lt=0.5)
    """Level of each one-sided test: a signal fails only when its test rejects "the canary is
    no worse" at this level (and the effect is beyond the allowance)."""

    min_effect_ms: float = Field(default=2.0, ge=0.0)
    """Latency: a quantile (p50 or p99) regresses only when the canary is slower by more than
    this many milliseconds AND by more than ``max_p99_ratio``."""

    fail_looks: int = Field(default=2, ge=1)
    """Roll back after this many failing looks in a row (``--watch`` or ``--state``)."""

    pass_looks: int = Field(default=3, ge=1)
    """Promote after this many passing looks in a row."""

    max_error_rate_delta: float = Field(default=0.01, ge=0.0, le=1.0)
    """Allowed canary error rate - primary error rate (0.01 = 1 point): more, shown at level
    ``alpha``, fails the look; a confidence bound below it passes."""

    max_p99_ratio: float = Field(default=1.2, ge=1.0)
    """Allowed canary / primary latency ratio at p50 and p99 (see ``min_effect_ms``)."""

    max_p99_ms: float | None = Field(default=None, gt=0)
    """Canary p99 latency limit, ms (off when unset): fails when more than 1% of canary
    requests are shown to be slower."""

    max_shadow_delta_p99: float | None = Field(default=None, ge=0)
    """Limit of the p99 of |primary - shadow| score deltas (off when unset): fails when more
    than 1% of rows are shown to be above it."""

    metrics: MetricNames = MetricNames()
    """Metric and label names (defaults: the Berth transformer's)."""


def load_policy(path: Path | None) -> RolloutPolicy:
    """The policy in ``path`` (YAML), or the defaults when ``path`` is None."""
    if path is None:
        return RolloutPolicy()
    import yaml

    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise RolloutError(f"cannot read policy {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise RolloutError(f"policy {path} must be a mapping of keys to values")
    try:
        return RolloutPolicy.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}" for e in exc.errors()
        )
        raise RolloutError(f"policy {path}: {problems}") from exc
