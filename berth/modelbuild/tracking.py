"""Log a build as an MLflow run: parameters, metrics, step durations and the artifact files.

Metrics are every number in the build's ``metrics.json`` (what ``evaluate`` wrote: AUC and
log-loss for fp32 and int8, and whatever else the evaluation adds, such as slice metrics,
nested keys joined with ``.``), so new evaluation metrics are logged without a change here.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from berth import registry
from berth.artifact import METADATA_FILE, read_metadata

if TYPE_CHECKING:
    from berth.modelbuild.config import BuildConfig

EXPERIMENT = "berth-build"


def flatten_numbers(values: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """Every int/float leaf of ``values`` (bools excluded), keys joined with ``.``."""
    out: dict[str, float] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten_numbers(value, f"{name}."))
        elif isinstance(value, int | float) and not isinstance(value, bool):
            out[name] = float(value)
    return out


def build_params(cfg: BuildConfig, results: Mapping[str, object]) -> dict[str, str]:
    from berth.datagen import DataSpec

    spec = DataSpec(**cfg.data)
    params: dict[str, object] = {
        "feature_service": cfg.feature_service,
        "quantization": cfg.quantization,
        **{f"data.{k}": v for k, v in vars(spec).items()},
    }
    train = results.get("train")
    if isinstance(train, Mapping):
        params.update({f"train.{k}": v for k, v in train.items() if k in ("hidden", "epochs")})
    return {k: str(v) for k, v in params.items()}


def log_build(cfg: BuildConfig, results: Mapping[str, object], seconds: Mapping[str, float]) -> str:
    """Log the build as a run of the ``berth-build`` experiment; the run id."""
    from mlflow.entities import Metric, Param

    client = registry.client()
    run = client.create_run(
        registry.experiment_id(client, EXPERIMENT),
        run_name=cfg.output.name,
        tags={"berth.feature_service": cfg.feature_service},
    )
    run_id: str = run.info.run_id
    now = int(time.time() * 1000)
    metrics_file = cfg.workdir / "metrics.json"
    metrics = flatten_numbers(json.loads(metrics_file.read_text())) if metrics_file.exists() else {}
    metrics.update({f"seconds.{step}": s for step, s in seconds.items()})
    try:
        client.log_batch(
            run_id,
            metrics=[Metric(k, v, now, 0) for k, v in sorted(metrics.items())],
            params=[Param(k, v) for k, v in sorted(build_params(cfg, results).items())],
        )
        if (cfg.output / METADATA_FILE).exists():
            meta = read_metadata(cfg.output)
            client.set_tag(run_id, registry.VERSION_TAG, meta.version)
            client.log_artifacts(run_id, str(cfg.output), registry.ARTIFACT_PATH)
    except BaseException:
        client.set_terminated(run_id, "FAILED")
        raise
    client.set_terminated(run_id, "FINISHED")
    return run_id


def track(
    cfg: BuildConfig, results: Mapping[str, object], seconds: Mapping[str, float]
) -> dict[str, str]:
    """Log the run and, with ``cfg.register``, register the packaged artifact."""
    try:
        from mlflow.exceptions import MlflowException
    except ImportError as exc:
        raise registry.RegistryError(
            "berth build logs to MLflow: pip install 'berth[tracking]' (or pass --no-track)"
        ) from exc

    if cfg.register and not (cfg.output / METADATA_FILE).exists():
        raise registry.RegistryError(f"--register: no packaged artifact in {cfg.output}")
    uri = registry.tracking_uri()
    try:
        run_id = log_build(cfg, results, seconds)
        out = {"tracking_uri": uri, "run_id": run_id}
        if cfg.register:
            meta = read_metadata(Path(cfg.output))
            version = registry.register(cfg.register, run_id, meta, cfg.storage_uri)
            out["registered"] = f"{registry.MODELS_PREFIX}{cfg.register}/{version}"
    except (MlflowException, OSError) as exc:
        raise registry.RegistryError(f"MLflow at {uri}: {exc}") from exc
    return out
