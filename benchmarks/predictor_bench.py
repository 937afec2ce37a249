"""The predictor's model alone: ONNX Runtime int8 vs fp32 vs torch eager, rows per second.

Runs in its own process (``python -m benchmarks.predictor_bench``; :func:`run` starts it) so
torch and ORT threads never share an interpreter with the load generator or the servers.
Models are measured in interleaved short rounds (int8, fp32, torch, int8, ...) and each figure
is the median over rounds: a noisy neighbour slows every model alike instead of whichever ran
during the noise. One ORT thread per session, as the predictor runs
(``BERTH_PREDICTOR_INTRA_OP_THREADS=1``).

``--widths`` adds the same comparison for wider MLPs built with the project's own release steps
(``berth.modelbuild``: random-init RankingMLP -> ``export_onnx`` -> ``quantize`` static QDQ,
calibrated on the artifact's training rows): the shipped 20->128->64->1 MLP is so small that
int8's arithmetic savings are lost in per-operator overhead; wider layers show the gain.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

INT8_FILE = "model.onnx"
FP32_FILE = "model.fp32.onnx"


def _session(path: Path, threads: int) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _ort_runner(path: Path, threads: int) -> Callable[[np.ndarray], Any]:
    session = _session(path, threads)
    name = session.get_inputs()[0].name
    return lambda rows: session.run(None, {name: rows})


def _torch_runner(build_dir: Path) -> Callable[[np.ndarray], Any]:
    import torch

    from berth.modelbuild.train import load_model

    torch.set_num_threads(1)
    model = load_model(build_dir)

    def run(rows: np.ndarray) -> Any:
        with torch.inference_mode():
            return model(torch.from_numpy(rows))

    return run


def _rows_per_s(run: Callable[[np.ndarray], Any], rows: np.ndarray, seconds: float) -> float:
    calls, started = 0, time.perf_counter()
    deadline = started + seconds
    while True:
        for _ in range(10):
            run(rows)
        calls += 10
        now = time.perf_counter()
        if now >= deadline:
            return len(rows) * calls / (now - started)


def interleaved(
    runners: dict[str, Callable[[np.ndarray], Any]],
    rows: np.ndarray,
    seconds: float,
    rounds: int = 5,
) -> dict[str, float]:
    """Median rows/s of each runner over ``rounds`` interleaved slices of ``seconds/rounds``."""
    for run in runners.values():  # warm-up: allocations, ORT's first-run planning
        for _ in range(20):
            run(rows)
    samples: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(rounds):
        for name, run in runners.items():
            samples[name].append(_rows_per_s(run, rows, seconds / rounds))
    return {name: round(statistics.median(v), 1) for name, v in samples.items()}


def calibration_rows(artifact: Path, n: int = 256) -> np.ndarray:
    """Realistic inputs: the artifact's feature defaults (training medians) with noise."""
    from berth.artifact import read_metadata

    meta = read_metadata(artifact)
    center = np.array([f.default for f in meta.features], dtype=np.float32)
    rng = np.random.default_rng(0)
    noise = rng.normal(0.0, 0.25, (n, len(center))).astype(np.float32)
    return (center * (1.0 + noise)).astype(np.float32)


def kernels(
    artifact: Path,
    build_dir: Path | None,
    batches: list[int],
    seconds: float,
    threads: int,
) -> dict[str, Any]:
    """rows/s per batch size for int8, fp32 and (when ``build_dir`` has model.pt) torch."""
    runners = {
        "int8": _ort_runner(artifact / INT8_FILE, threads),
        "fp32": _ort_runner(artifact / FP32_FILE, threads),
    }
    notes = []
    if build_dir is not None and (build_dir / "model.pt").exists():
        try:
            runners["torch_eager"] = _torch_runner(build_dir)
        except ImportError as exc:
            notes.append(f"torch eager skipped: {exc}")
    else:
        notes.append("torch eager skipped: no <artifact>.build/model.pt beside the artifact")
    pool = calibration_rows(artifact, max(batches))
    by_batch = {}
    for batch in batches:
        by_batch[str(batch)] = interleaved(runners, np.ascontiguousarray(pool[:batch]), seconds)
    return {"rows_per_s": by_batch, "threads": threads, "notes": notes}


def wide_models(build_dir: Path, widths: list[tuple[int, ...]], seconds: float) -> dict[str, Any]:
    """int8 vs fp32 rows/s at batch 64 for random-init MLPs of the given hidden widths."""
    import torch

    from berth.modelbuild.dataset import load_training_set
    from berth.modelbuild.export import export_onnx
    from berth.modelbuild.quantize import quantize
    from berth.modelbuild.train import RankingMLP, feature_matrix

    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="berth-bench-wide-") as tmp:
        for hidden in widths:
            work = Path(tmp) / "x".join(map(str, hidden))
            work.mkdir()
            for name in ("training.parquet", "contract.json"):
                shutil.copy2(build_dir / name, work / name)
            frame, contract = load_training_set(work)
            names = [f["name"] for f in contract["features"]]
            x = feature_matrix(frame, names)
            torch.manual_seed(0)
            model = RankingMLP(x.mean(0), np.clip(x.std(0), 1e-6, None), hidden)
            state = {"state": model.state_dict(), "hidden": hidden, "n": len(names)}
            torch.save(state, work / "model.pt")
            started = time.perf_counter()
            export_onnx(work)
            quantize(work)
            build_s = time.perf_counter() - started
            rows = np.ascontiguousarray(x[:64])
            rates = interleaved(
                {
                    "int8": _ort_runner(work / INT8_FILE, 1),
                    "fp32": _ort_runner(work / FP32_FILE, 1),
                },
                rows,
                seconds,
            )
            key = "20x" + "x".join(map(str, hidden)) + "x1"
            out[key] = {
                **rates,
                "int8_over_fp32": round(rates["int8"] / rates["fp32"], 2),
                "build_s": round(build_s, 1),
            }
    return out


def run(
    artifact: Path,
    build_dir: Path | None,
    batches: list[int],
    seconds: float,
    widths: list[tuple[int, ...]],
    timeout_s: float = 300.0,
) -> dict[str, Any]:
    """The benchmark in a child process; its JSON result."""
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.predictor_bench",
        *("--artifact", str(artifact)),
        *("--batches", ",".join(map(str, batches))),
        *("--seconds", str(seconds)),
    ]
    if build_dir is not None:
        cmd += ["--build", str(build_dir)]
    for hidden in widths:
        cmd += ["--width", "x".join(map(str, hidden))]
    proc = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
        cwd=Path(__file__).resolve().parent.parent,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"predictor benchmark failed:\n{proc.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.predictor_bench")
    parser.add_argument("--artifact", required=True, type=Path)
    parser.add_argument("--build", type=Path, help="<artifact>.build (model.pt for torch)")
    parser.add_argument("--batches", default="1,10,64,256")
    parser.add_argument("--seconds", type=float, default=2.0, help="per model and batch size")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--width", action="append", default=[], help="hidden widths of an extra MLP, e.g. 512x256"
    )
    args = parser.parse_args(argv)
    batches = [int(b) for b in args.batches.split(",")]
    result: dict[str, Any] = kernels(args.artifact, args.build, batches, args.seconds, args.threads)
    widths = [tuple(int(v) for v in w.split("x")) for w in args.width]
    if widths:
        if args.build is None or not (args.build / "training.parquet").exists():
            result["notes"].append("wide models skipped: no <artifact>.build/training.parquet")
        else:
            import contextlib
            import io

            with contextlib.redirect_stdout(io.StringIO()):  # torch.onnx's progress lines
                result["wide_models_b64"] = wide_models(args.build, widths, args.seconds)
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
