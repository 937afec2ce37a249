"""The transformer's settings: ``BERTH_TRANSFORMER_*`` environment variables.

KServe's own flags (``--model_name``, ``--predictor_host``, ``--predictor_protocol``, ports)
stay on the command line; everything Berth adds is here, one documented field each.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from berth.featurerepo import REDIS_YAML, REPO_DIR

Policy = Literal["default", "reject"]


class TransformerSettings(BaseSettings):
    """Configuration of ``python -m berth_transformer``."""

    model_config = SettingsConfigDict(env_prefix="BERTH_TRANSFORMER_", extra="ignore")

    feature_repo: Path = REPO_DIR
    """The Feast repo (definitions and ``data/registry.db``) the FeatureService comes from."""

    feature_store_yaml: Path | None = None
    """The repo's config file; ``<feature_repo>/feature_store.yaml`` (Redis) when unset. Use
    ``feature_store.sqlite.yaml`` for the embedded SQLite online store."""

    feature_service: str = "driver_ranking_v1"
    """The FeatureService this transformer serves; the predictor's model must name the same."""

    model_metadata: Path | None = None
    """The artifact's ``metadata.json`` (mounted beside the transformer). It supplies the fill
    value of each feature (the training median) for the ``default`` policy; its version, service
    and feature list are checked against the predictor's at start. Required when a view's
    policy is ``default`` (the default)."""

    feature_timeout_ms: int = Field(default=250, gt=0)
    """Timeout of the one batched online-store read of a request (answer: 504)."""

    predictor_timeout_ms: int = Field(default=1000, gt=0)
    """Timeout of the call to the predictor (answer: 504)."""

    max_candidates: int = Field(default=200, gt=0)
    """Most candidate drivers (rows) in one request; more is a 400 naming the field."""

    missing_policy: dict[str, Policy] = Field(default_factory=dict)
    """Per feature view, what to do when an entity has no value (JSON map view -> policy):
    ``default`` fills the artifact's value and counts it, ``reject`` answers 400 naming the
    entity field. Views not listed use ``default``."""

    stale_policy: dict[str, Policy] = Field(default_factory=dict)
    """Per feature view, what to do when a value is older than the view's TTL (JSON map):
    ``default`` fills the artifact's value and counts it, ``reject`` answers 503 (fresh
    features unavailable). Views not listed use ``default``."""

    startup_timeout_s: float = Field(default=120.0, gt=0)
    """How long the start-up contract check waits for the predictor to answer its metadata."""

    log_level: str = "INFO"
    """Log level of the JSON logs (structlog, stderr)."""

    # Later issues add CANARY_HOST / CANARY_PERCENT / SHADOW_HOST, DEADLINE_MS and MAX_INFLIGHT.

    @model_validator(mode="after")
    def _default_yaml(self) -> TransformerSettings:
        if self.feature_store_yaml is None:
            self.feature_store_yaml = self.feature_repo / REDIS_YAML
        return self

    def missing_policy_for(self, view: str) -> Policy:
        return self.missing_policy.get(view, "default")

    def stale_policy_for(self, view: str) -> Policy:
        return self.stale_policy.get(view, "default")

    def needs_defaults(self, views: list[str]) -> bool:
        return any(
            self.missing_policy_for(v) == "default" or self.stale_policy_for(v) == "default"
            for v in views
        )
