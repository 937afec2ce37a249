"""``python -m benchmarks predictor --provider cuda``: the model on a GPU, prepared.

ONNX Runtime's CUDA execution provider (and TensorRT's where it loads) beside its CPU provider,
int8 and fp32, batches 1 to 1024. ``onnxruntime-gpu`` conflicts with the project's
``onnxruntime``, so it runs in its own venv (``benchmarks/.venvs/onnxruntime-gpu``, made by
:mod:`benchmarks.peer_venv` on first use) through ``benchmarks/peer_runtimes/ort_gpu_bench.py``.
Without an NVIDIA GPU it refuses before installing anything (:class:`NoGpu`).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from benchmarks import peer_venv

SCRIPT = Path(__file__).resolve().parent / "peer_runtimes" / "ort_gpu_bench.py"
DEFAULT_BATCHES = (1, 10, 64, 256, 1024)


class NoGpu(RuntimeError):
    """No NVIDIA GPU (driver) on this machine: nothing was installed or run."""


def gpu_present() -> str | None:
    """The GPUs ``nvidia-smi -L`` lists, or None without a driver or a device."""
    smi = shutil.which("nvidia-smi")
    if smi is None or not Path("/dev/nvidiactl").exists():
        return None
    try:
        out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    listed = out.stdout.strip()
    return listed if out.returncode == 0 and listed.startswith("GPU") else None


def run(artifact: Path, batches: list[int], seconds: float) -> dict[str, Any]:
    gpus = gpu_present()
    if gpus is None:
        raise NoGpu(
            "no NVIDIA GPU here (nvidia-smi and /dev/nvidiactl not found): "
            "`python -m benchmarks predictor --provider cuda` needs one; nothing was installed "
            "or run. On a GPU machine it makes benchmarks/.venvs/onnxruntime-gpu and measures "
            "ORT's CUDA (and TensorRT, where installed) providers beside CPU."
        )
    if not (artifact / "model.onnx").exists():
        raise FileNotFoundError(f"{artifact}: no model.onnx (run `berth build`)")
    venv = peer_venv.ensure("onnxruntime-gpu")
    proc = subprocess.run(
        [
            *(str(venv / "bin" / "python"), str(SCRIPT), str(artifact)),
            *("--batches", ",".join(str(b) for b in batches), "--seconds", str(seconds)),
        ],
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"GPU benchmark failed: {proc.stderr.strip()[-2000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    result["gpus"] = gpus
    return result
