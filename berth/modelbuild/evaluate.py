"""fp32 vs int8 on the held-out (newest) rows: AUC, log-loss, max |Δp|, per-slice quality
(:mod:`berth.modelbuild.slices`), and the package gates."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort

from berth.artifact import FP32_MODEL_FILE, MODEL_FILE
from berth.errors import BerthError
from berth.modelbuild.dataset import LABEL, load_training_set, time_split
from berth.modelbuild.export import INPUT_NAME
from berth.modelbuild.measures import auc, logloss
from berth.modelbuild.slices import GATE, check_gate, slice_metrics
from berth.modelbuild.train import feature_matrix

MAX_AUC_DROP = 0.005


class QualityGateError(BerthError):
    """The int8 model lost too much accuracy: the artifact is not packaged."""


def score(model: Path, rows: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    scores: np.ndarray = session.run(None, {INPUT_NAME: rows})[0]
    return scores


def evaluate(workdir: Path, heldout: float = 0.2) -> dict[str, object]:
    frame, contract = load_training_set(workdir)
    _, test = time_split(frame, heldout)
    names = [f["name"] for f in contract["features"]]
    rows = feature_matrix(test, names)
    labels = test[LABEL].to_numpy()
    p32, p8 = score(workdir / FP32_MODEL_FILE, rows), score(workdir / MODEL_FILE, rows)
    metrics: dict[str, object] = {
        "auc_fp32": round(auc(labels, p32), 5),
        "auc_int8": round(auc(labels, p8), 5),
        "logloss_fp32": round(logloss(labels, p32), 5),
        "logloss_int8": round(logloss(labels, p8), 5),
        "max_abs_diff": round(float(np.max(np.abs(p32 - p8))), 6),
        "heldout_rows": len(test),
    }
    slices = slice_metrics(test, labels, p32, p8)
    (workdir / "metrics.json").write_text(
        json.dumps(
            {
                **metrics,
                "slices": [s.model_dump(mode="json") for s in slices],
                "slice_gate": GATE.model_dump(mode="json"),
            },
            indent=2,
        )
    )
    drop = float(metrics["auc_fp32"]) - float(metrics["auc_int8"])  # type: ignore[arg-type]
    if drop > MAX_AUC_DROP:
        raise QualityGateError(
            f"int8 AUC {metrics['auc_int8']} is {drop:.4f} below fp32 {metrics['auc_fp32']} "
            f"(limit {MAX_AUC_DROP}): refusing to package"
        )
    check_gate(slices, GATE)
    return {**metrics, "slices": len(slices)}
