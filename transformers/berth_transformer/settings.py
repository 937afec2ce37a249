"""The transformer's settings: ``BERTH_TRANSFORMER_*`` environment variables.

KServe's own flags (``--model_name``, ``--predictor_host``, ``--predictor_protocol``, ports)
stay on the command line; everything Berth adds is here, one documented field each.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from berth.featurerepo import REDIS_YAML, REPO_DIR
from berth.serving.settings import ServingSettings

Policy = Literal["default", "reject"]
SourceKind = Literal["auto", "redis", "feast"]


class TransformerSettings(ServingSettings):
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

    feature_source: SourceKind = "auto"
    """How features are read: ``redis`` reads Feast's Redis layout directly (one pipelined
    HMGET per distinct entity, no SDK per request; on Redis Cluster one pipelined write per
    master, masters concurrently; TLS and ACL users from Feast's connection string; refuses to
    start when the FeatureService cannot be read that way), ``feast`` calls Feast's SDK (any
    online store), ``auto`` takes ``redis`` when it can and logs why not when it cannot."""

    predictor_timeout_ms: int = Field(default=1000, gt=0)
    """Timeout of the call to the predictor (answer: 504). KServe's
    ``--predictor_request_timeout_seconds`` sets it too (not both)."""

    predictor_retries: int = Field(default=1, ge=0, le=3)
    """Retries of a predictor call that failed before it was answered (gRPC UNAVAILABLE, a
    refused or reset connection, HTTP 502/503), within the call's timeout; never after a
    timeout or an answer. A retry goes over a fresh gRPC channel or a new REST connection (not
    a pooled one), so one retry (the default) moves a call off a draining predictor replica; 0
    turns retries off. Inference and metadata are idempotent (no state changes).
    KServe's ``--predictor_request_retries`` sets it too (not both)."""

    predictor_tls: bool = False
    """TLS to the predictor (and canary and shadow): a gRPC channel with
    ``ssl_channel_credentials``, https for REST. KServe's ``--predictor_use_ssl`` sets it
    too (KServe's controller appends ``--predictor_use_ssl true`` when the predictor sits
    behind TLS); a flag and a variable that disagree are refused."""

    predictor_ca_bundle: Path | None = None
    """PEM file of the CA certificates that sign the predictor's certificate (with TLS);
    unset: the system's roots (a cluster's service CA is usually not among them: mount it and
    point this at it)."""

    max_candidates: int = Field(default=200, gt=0)
    """Most candidate drivers (rows) in one request; more is a 400 naming the field."""

    all_missing_status: int = 503
    """A request none of whose entities has a stored feature (a flushed or evicted store):
    ``503`` answers 503 + Retry-After instead of a ranking made of fill values alone; ``200``
    fills them (the answer still says so: ``x-berth-filled-values``, ``filled_values``)."""

    @field_validator("all_missing_status")
    @classmethod
    def _all_missing_status(cls, value: int) -> int:
        if value not in (200, 503):
            raise ValueError("must be 503 or 200")
        return value

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

    deadline_ms: int | None = Field(default=None, gt=0)
    """End-to-end deadline of a request inside the transformer (feature read + predictor
    call); past it the answer is 504 (gRPC DEADLINE_EXCEEDED). Unset: FEATURE_TIMEOUT_MS +
    PREDICTOR_TIMEOUT_MS + 250, so a stage's own timeout answers first and names the stage."""

    max_inflight: int = Field(default=64, ge=1)
    """Requests in flight before new ones get 429 with Retry-After (gRPC RESOURCE_EXHAUSTED)
    at once instead of queueing. Keep it near throughput x deadline."""

    max_request_bytes: int = Field(default=1024 * 1024, ge=1024)
    """Largest request body (REST: 413 naming this setting) and gRPC message (the gRPC
    server's max receive size; larger is RESOURCE_EXHAUSTED)."""

    drift_window: int = Field(default=5000, ge=0)
    """Served rows kept for drift (PSI per feature against the artifact's training
    histograms, gauge ``berth_transformer_feature_psi``); 0 turns drift off."""

    drift_min_rows: int = Field(default=500, ge=1)
    """No PSI until the window holds this many rows: below it the gauge is absent (a PSI of
    a handful of rows is noise) and ``berth drift`` says "not enough data (N of M rows)".
    At most ``drift_window`` (a smaller window needs all its rows)."""

    drift_refresh_s: float = Field(default=5.0, ge=0)
    """Recompute the PSI gauges at most this often (on scrape of /metrics)."""

    canary_host: str | None = None
    """``host:port`` of a canary predictor (same protocol as the primary: its gRPC port for
    ``grpc-v2``, its HTTP port for ``v2``). It must serve the same FeatureService (checked at
    start); its model version may differ. Unset: no canary."""

    canary_percent: float = Field(default=0.0, ge=0, le=100)
    """Share of customers (0..100, steps of 0.01) whose requests go to the canary, sticky by a
    hash of the request's customer id (a request mixing customers routes by its first)."""

    shadow_host: str | None = None
    """``host:port`` of a shadow predictor: it gets a copy of every answered request, fire and
    forget; its scores only feed ``berth_transformer_shadow_delta`` and a log line."""

    shadow_queue_size: int = Field(default=256, ge=1)
    """Requests waiting for the shadow; when full, new copies are dropped and counted."""

    shadow_linger_ms: float = Field(default=20.0, ge=0)
    """How long a shadow call waits to gather more copies (up to 256 rows) before it is
    sent: one call per this many ms instead of one per request, so the mirror costs the
    primary's event loop little. 0: send what is queued at once."""

    shadow_timeout_ms: int = Field(default=1000, gt=0)
    """Timeout of one call to the shadow predictor (a timeout counts as a shadow error)."""

    contract_policy: dict[str, Policy] = Field(default_factory=dict)
    """Per feature view (JSON map view -> policy), what to do with a value read from the
    online store outside the artifact's data contract (its range or allowed set): ``default``
    fills the training default, ``reject`` answers 503 naming the feature. Either way it is
    counted in ``berth_transformer_contract_violations_total``. Views not listed: ``default``."""

    explain_max_inflight: int = Field(default=2, ge=1)
    """``:explain`` requests in flight before another gets 429 (naming this setting); its own
    bound, apart from MAX_INFLIGHT, so explanations cannot take the slots of ``:predict``."""

    explain_rows_per_candidate: int = Field(default=512, ge=2)
    """Budget of predictor rows per explained candidate: exact Shapley values when the
    ``2**k`` coalitions of the ``k`` features that differ from the baseline fit, sampled
    permutations (``budget // k``) otherwise (``berth_transformer/explain.py``)."""

    explain_batch_rows: int = Field(default=1024, ge=1)
    """Most rows in one predictor call of an explanation (keep it at or below the
    predictor's MAX_REQUEST_ROWS)."""

    explain_deadline_ms: int = Field(default=10_000, gt=0)
    """Deadline of one ``:explain`` request (504 past it)."""

    @model_validator(mode="after")
    def _default_yaml(self) -> TransformerSettings:
        if self.feature_store_yaml is None:
            self.feature_store_yaml = self.feature_repo / REDIS_YAML
        return self

    @property
    def deadline_s(self) -> float:
        """The end-to-end deadline in seconds (``deadline_ms`` or its default)."""
        ms = self.deadline_ms or self.feature_timeout_ms + self.predictor_timeout_ms + 250
        return ms / 1000

    def missing_policy_for(self, view: str) -> Policy:
        return self.missing_policy.get(view, "default")

    def stale_policy_for(self, view: str) -> Policy:
        return self.stale_policy.get(view, "default")

    def needs_defaults(self, views: list[str]) -> bool:
        return any(
            self.missing_policy_for(v) == "default" or self.stale_policy_for(v) == "default"
            for v in views
        )
