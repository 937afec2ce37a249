"""Scoring engines: the int8 model in ONNX Runtime over a chunk's model input.

``local`` runs one session in this process; ``ray`` runs the same batches on Ray Data
(``map_batches`` over an actor pool, one session per actor), on this machine (``ray.init``)
or on the cluster ``RAY_ADDRESS`` names. Both cut a chunk into the same ``batch_rows``
batches, so they give the same scores.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from berth.artifact import MODEL_FILE
from berth.contract import INPUT_NAME


class Engine(Protocol):
    streams: bool  # False: score every chunk in one call, after the joins

    def score(self, rows: np.ndarray) -> np.ndarray: ...

    def close(self) -> None: ...


class OrtScorer:
    """One ONNX Runtime session; ``__call__`` takes a Ray Data batch (``{"features": ...}``)."""

    def __init__(self, model: str | bytes, threads: int = 0) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])

    def run(self, rows: np.ndarray) -> np.ndarray:
        out: np.ndarray = self.session.run(None, {INPUT_NAME: rows})[0]
        return out.reshape(-1).astype(np.float32)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {"score": self.run(np.ascontiguousarray(batch[INPUT_NAME], dtype=np.float32))}


class LocalEngine:
    streams = True

    def __init__(self, artifact: Path, batch_rows: int, threads: int = 0) -> None:
        self.scorer = OrtScorer(str(artifact / MODEL_FILE), threads)
        self.batch_rows = batch_rows

    def score(self, rows: np.ndarray) -> np.ndarray:
        parts = [
            self.scorer.run(rows[i : i + self.batch_rows])
            for i in range(0, len(rows), self.batch_rows)
        ]
        return np.concatenate(parts) if parts else np.empty(0, np.float32)

    def close(self) -> None:
        return None


class RayEngine:
    """Ray Data: ``from_numpy`` -> ``map_batches(OrtScorer)`` on a pool of ``workers`` actors;
    one pass over all chunks (an actor pool starts in seconds: once per batch, not per chunk)."""

    streams = False

    def __init__(self, artifact: Path, batch_rows: int, workers: int) -> None:
        import ray

        self._started = not ray.is_initialized()
        if self._started:
            address = os.environ.get("RAY_ADDRESS")
            init: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
            if not address:
                init["num_cpus"] = workers
            ray.init(address=address, **init)
        self.model = (artifact / MODEL_FILE).read_bytes()
        self.batch_rows = batch_rows
        self.workers = workers

    def score(self, rows: np.ndarray) -> np.ndarray:
        import ray.data

        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False
        context.execution_options.preserve_order = True
        dataset = ray.data.from_numpy(rows).rename_columns({"data": INPUT_NAME})
        scored = dataset.map_batches(
            OrtScorer,
            fn_constructor_args=(self.model, 1),  # the model's bytes: workers need no path
            batch_size=self.batch_rows,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=self.workers),
            num_cpus=1,
        )
        parts = [b["score"] for b in scored.iter_batches(batch_size=None, batch_format="numpy")]
        return np.concatenate(parts) if parts else np.empty(0, np.float32)

    def close(self) -> None:
        if self._started:
            import ray

            ray.shutdown()


def make_engine(name: str, artifact: Path, batch_rows: int, workers: int) -> Engine:
    if name == "ray":
        return RayEngine(artifact, batch_rows, workers)
    return LocalEngine(artifact, batch_rows)
