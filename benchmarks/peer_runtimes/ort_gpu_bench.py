"""``python ort_gpu_bench.py ARTIFACT --batches 1,10,... --seconds S``: rows per second of the
artifact's int8 and fp32 models on ONNX Runtime's CUDA and TensorRT execution providers (where
they load), beside its CPU provider, one JSON object on stdout.

Run by :mod:`benchmarks.gpu_bench` inside the ``onnxruntime-gpu`` venv (that package conflicts
with the project's ``onnxruntime``); never imported by the project. Inputs go in as numpy
arrays per call, so host<->device copies count, as they would in a server.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

MODELS = {"int8": "model.onnx", "fp32": "model.fp32.onnx"}
PROVIDERS = {
    "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"],
    "tensorrt": ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
    "cpu": ["CPUExecutionProvider"],
}


def rows_per_s(session: Any, rows: np.ndarray, seconds: float) -> float:
    name = session.get_inputs()[0].name
    for _ in range(20):  # warm-up: kernels, TensorRT engine build
        session.run(None, {name: rows})
    calls, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        session.run(None, {name: rows})
        calls += 1
    return round(len(rows) * calls / (time.perf_counter() - started), 1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("artifact")
    parser.add_argument("--batches", default="1,10,64,256,1024")
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()
    if hasattr(ort, "preload_dlls"):
        ort.preload_dlls()  # the CUDA / cuDNN wheels' libraries
    available = ort.get_available_providers()
    out: dict[str, Any] = {"onnxruntime": ort.__version__, "available": available, "errors": {}}
    rows: dict[str, dict[str, float]] = {}
    rng = np.random.default_rng(0)
    for provider, chain in PROVIDERS.items():
        if chain[0] not in available:
            out["errors"][provider] = f"{chain[0]} not available in this onnxruntime"
            continue
        for model, filename in MODELS.items():
            options = ort.SessionOptions()
            options.intra_op_num_threads = 1
            try:
                session = ort.InferenceSession(
                    str(Path(args.artifact) / filename), options, providers=chain
                )
            except Exception as exc:  # a provider that cannot take this model: say why
                out["errors"][f"{provider}_{model}"] = f"{type(exc).__name__}: {exc}"[:400]
                continue
            used = session.get_providers()[0]
            width = session.get_inputs()[0].shape[1]
            for batch in (int(b) for b in args.batches.split(",")):
                data = rng.random((batch, width), dtype=np.float32)
                rows.setdefault(str(batch), {})[f"{provider}_{model}"] = rows_per_s(
                    session, data, args.seconds
                )
            out.setdefault("ran_on", {})[f"{provider}_{model}"] = used
    out["rows_per_s"] = rows
    print(json.dumps(out))


if __name__ == "__main__":
    main()
