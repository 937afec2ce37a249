"""Package the artifact directory: models, ``metadata.json`` with digests, ``MODEL_CARD.md``."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from berth.artifact import (
    FP32_MODEL_FILE,
    MODEL_CARD_FILE,
    MODEL_FILE,
    ArtifactMetadata,
    DataContract,
    FeatureSpec,
    ModelMetrics,
    TensorSpec,
    TrainingData,
    sha256_file,
    verify_artifact,
    write_metadata,
)
from berth.drift import reference_histogram
from berth.modelbuild.dataset import LABEL, load_training_set, time_split
from berth.modelbuild.export import INPUT_NAME, OUTPUT_NAME


def package(
    workdir: Path,
    output: Path,
    name: str,
    quantization: str,
    version: str | None = None,
    heldout: float = 0.2,
) -> ArtifactMetadata:
    frame, contract = load_training_set(workdir)
    train, test = time_split(frame, heldout)
    metrics = ModelMetrics(**json.loads((workdir / "metrics.json").read_text()))
    features = []
    for spec in contract["features"]:
        column = train[spec["name"]].to_numpy(dtype=np.float64)
        edges, proportions = reference_histogram(column)
        features.append(
            FeatureSpec(
                name=spec["name"],
                dtype=spec["dtype"],
                view=spec["view"],
                default=float(np.median(column)),
                reference_edges=edges,
                reference_proportions=proportions,
            )
        )
    output.mkdir(parents=True, exist_ok=True)
    for file in (MODEL_FILE, FP32_MODEL_FILE):
        shutil.copy2(workdir / file, output / file)
    service = contract["feature_service"]
    version = version or f"{service.rsplit('_', 1)[-1]}-{sha256_file(output / MODEL_FILE)[:8]}"
    metadata = ArtifactMetadata(
        name=name,
        version=version,
        feature_service=service,
        features=features,
        inputs=[TensorSpec(name=INPUT_NAME, shape=[-1, len(features)])],
        outputs=[TensorSpec(name=OUTPUT_NAME, shape=[-1])],
        quantization=quantization,
        metrics=metrics,
        training_data=TrainingData(
            start=frame["event_timestamp"].min().floor("s").to_pydatetime(),
            end=frame["event_timestamp"].max().floor("s").to_pydatetime(),
            train_rows=len(train),
            heldout_rows=len(test),
            positive_rate=round(float(frame[LABEL].mean()), 4),
        ),
        created_at=datetime.now(UTC).replace(microsecond=0),
        files={MODEL_FILE: "", FP32_MODEL_FILE: "", MODEL_CARD_FILE: ""},
        data_contract=DataContract(**contract["data_contract"]),
    )
    (output / MODEL_CARD_FILE).write_text(model_card(metadata))
    write_metadata(output, metadata)
    return verify_artifact(output)


def model_card(meta: ArtifactMetadata) -> str:
    m, t = meta.metrics, meta.training_data
    rows = "\n".join(
        f"| {i} | `{f.name}` | {f.dtype} | {f.view} | {f.default:.4g} |"
        for i, f in enumerate(meta.features)
    )
    return f"""# Model card: {meta.name} {meta.version}

Scores how likely a candidate driver is to accept and complete a ride request
(`accepted`), used to rank candidates. Input contract: Feast FeatureService
`{meta.feature_service}`; one FP32 tensor `{meta.inputs[0].name}` of shape
{meta.inputs[0].shape}, output `{meta.outputs[0].name}` (probability) of shape
{meta.outputs[0].shape}. Served int8 ({meta.quantization} quantization, ONNX Runtime).

## Training data
Point-in-time join (Feast `get_historical_features`) of synthetic rides, {t.start:%Y-%m-%d %H:%M}
to {t.end:%Y-%m-%d %H:%M} UTC: {t.train_rows} training rows, {t.heldout_rows} held-out rows
(the newest, time-based split), positive rate {t.positive_rate}.

## Evaluation (held-out rows)
| model | AUC | log-loss |
|---|---|---|
| fp32 | {m.auc_fp32:.4f} | {m.logloss_fp32:.4f} |
| int8 | {m.auc_int8:.4f} | {m.logloss_int8:.4f} |

Max |p_fp32 - p_int8| = {m.max_abs_diff:.5f}. Packaging is refused when the int8 AUC is more
than 0.005 below fp32.

{slice_section(meta)}
## Features (input column order)
| # | name | dtype | view | default (missing/stale) |
|---|---|---|---|---|
{rows}

{contract_section(meta)}
## Limits
Trained on generated data with a known signal (`berth.datagen`); not a model of real riders.
"""


def _num(value: float | None, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def slice_section(meta: ArtifactMetadata) -> str:
    """The per-slice table of the held-out rows and the gate's limits."""
    m, gate = meta.metrics, meta.metrics.slice_gate
    if not m.slices or gate is None:
        return ""
    rows = "\n".join(
        f"| {s.slice} | {s.group} | {s.rows} | {s.positive_rate:.3f} | {_num(s.auc_fp32)} | "
        f"{_num(s.auc_int8)} | {s.logloss_fp32:.4f} | {s.logloss_int8:.4f} | "
        f"{s.ece_fp32:.4f} | {s.ece_int8:.4f} |"
        for s in m.slices
    )
    return f"""## Slices (held-out rows)
| slice | group | rows | positive rate | AUC fp32 | AUC int8 | log-loss fp32 | log-loss int8 \
| ECE fp32 | ECE int8 |
|---|---|---|---|---|---|---|---|---|---|
{rows}

Slice gate: packaging is refused when, inside a slice, the fp32 AUC gap between groups is over
{gate.max_auc_gap} or int8's AUC is more than {gate.max_int8_auc_drop} below fp32 in any group
(groups under {gate.min_rows} rows are reported, not gated). ECE: expected calibration error,
10 bins.
"""


def contract_section(meta: ArtifactMetadata) -> str:
    """The data contract the training set passed and served values are checked against."""
    c = meta.data_contract
    if c is None:
        return ""
    rows = "\n".join(
        f"| `{r.name}` | {r.dtype} | {r.describe()} | {r.max_null_share:g} |" for r in c.features
    )
    return f"""## Data contract (`{c.source}`)
The training set passed it (pandera); the transformer counts served values outside it
(`berth_transformer_contract_violations_total`).

| feature | dtype | values | max null share |
|---|---|---|---|
{rows}
"""
