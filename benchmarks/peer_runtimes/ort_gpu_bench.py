"""``python ort_gpu_bench.py ARTIFACT --batches 1,10,... --seconds S``: rows per second of the
artifact's int8 and fp32 models on ONNX Runtime's CUDA and TensorRT execution providers (where
they load), beside its CPU provider, one JSON object on stdout.

Run by :mod:`benchmarks.gpu_bench` inside the ``onnxruntime-gpu`` venv (that package conflicts
with the project's ``onnxruntime``); never imported by the project. Inputs go in as numpy
arrays per call, so host<->device copies count, as they would in a server.

``--torch-cuda`` adds a reference row where ``torch`` with CUDA is importable: the fp32 model's
own weights (standardize, three Gemm layers, sigmoid) run as torch ops on the GPU, inputs copied
in and scores copied out per call. It says what the GPU gives this model where ORT's CUDA
provider cannot be installed; it is not ORT.
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


def torch_cuda_runner(fp32: Path) -> Any:
    """The fp32 ONNX graph's weights as torch ops on the GPU; None without torch or CUDA."""
    try:
        import onnx
        import torch
        from onnx import numpy_helper
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    w = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(fp32)).graph.initializer}
    t = {k: torch.from_numpy(v.copy()).cuda() for k, v in w.items()}
    layers = sorted({k.rsplit(".", 1)[0] for k in w if k.endswith(".weight")})

    def run(rows: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            x = (torch.from_numpy(rows).cuda() - t["mean"]) / t["std"]
            for i, layer in enumerate(layers):
                x = torch.nn.functional.linear(x, t[f"{layer}.weight"], t[f"{layer}.bias"])
                x = torch.relu(x) if i < len(layers) - 1 else torch.sigmoid(x)
            result: np.ndarray = x.squeeze(-1).cpu().numpy()
            return result

    run.device = torch.cuda.get_device_name(0)  # type: ignore[attr-defined]
    return run


class _Runner:
    """A plain callable in ``session.run`` form, for :func:`rows_per_s`."""

    def __init__(self, fn: Any, width: int) -> None:
        self.fn, self.width = fn, width

    def get_inputs(self) -> list[Any]:
        return [argparse.Namespace(name="features", shape=["batch", self.width])]

    def run(self, _outputs: Any, feeds: dict[str, np.ndarray]) -> Any:
        return self.fn(feeds["features"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("artifact")
    parser.add_argument("--batches", default="1,10,64,256,1024")
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--torch-cuda", action="store_true", help="add the torch CUDA reference")
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
    fn = torch_cuda_runner(Path(args.artifact) / MODELS["fp32"]) if args.torch_cuda else None
    if fn is not None:
        out.setdefault("ran_on", {})["torch_cuda_fp32"] = fn.device
        runner = _Runner(fn, int(_width(Path(args.artifact) / MODELS["fp32"])))
        for batch in (int(b) for b in args.batches.split(",")):
            data = rng.random((batch, runner.width), dtype=np.float32)
            rows.setdefault(str(batch), {})["torch_cuda_fp32"] = rows_per_s(
                runner, data, args.seconds
            )
    elif args.torch_cuda:
        out["errors"]["torch_cuda_fp32"] = "torch with CUDA not importable here"
    out["rows_per_s"] = rows
    print(json.dumps(out))


def _width(path: Path) -> int:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return int(session.get_inputs()[0].shape[1])


if __name__ == "__main__":
    main()
