"""The ONNX Runtime session, opened lazily in the process that runs it (sessions don't pickle)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

from berth.artifact import MODEL_FILE, ArtifactMetadata
from berth_predictor import metrics
from berth_predictor.settings import PredictorSettings

_LEVELS = {
    "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


class OnnxSession:
    """``run(rows) -> scores`` over the artifact's ``model.onnx``."""

    def __init__(self, model_dir: Path, meta: ArtifactMetadata, settings: PredictorSettings):
        self.path = model_dir / MODEL_FILE
        self.input_name = meta.inputs[0].name
        self.width = meta.inputs[0].shape[1]
        self.settings = settings
        self._session: ort.InferenceSession | None = None
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, object]:
        return {**self.__dict__, "_session": None, "_lock": None}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def _open(self) -> ort.InferenceSession:
        with self._lock:
            if self._session is None:
                options = ort.SessionOptions()
                options.intra_op_num_threads = self.settings.intra_op_threads
                options.inter_op_num_threads = 1
                options.graph_optimization_level = _LEVELS[self.settings.graph_optimization]
                self._session = ort.InferenceSession(
                    str(self.path), options, providers=["CPUExecutionProvider"]
                )
            return self._session

    def run(self, rows: np.ndarray) -> np.ndarray:
        session = self._session or self._open()
        started = time.perf_counter()
        scores = session.run(None, {self.input_name: rows})[0]
        metrics.RUN_SECONDS.observe(time.perf_counter() - started)
        metrics.ROWS.inc(len(rows))
        return np.asarray(scores, dtype=np.float32).reshape(len(rows))

    def warm_up(self, runs: int, rows: int, center: np.ndarray) -> None:
        """Run the model before reporting ready (not counted in the metrics)."""
        session = self._open()
        batch = np.tile(center.astype(np.float32), (rows, 1))
        for _ in range(runs):
            session.run(None, {self.input_name: batch})
