"""``python pytriton_ort.py --model M --onnx PATH --http-port P --grpc-port G --metrics-port X``:
the benchmark's Triton peer, NVIDIA's PyTriton serving the same int8 ``model.onnx`` in ONNX
Runtime (one intra-op thread) behind Triton's own HTTP / gRPC V2 front ends, with Triton's
dynamic batcher (PyTriton's ``ModelConfig(max_batch_size=64)``, ``batcher`` defaults).

Run by :mod:`benchmarks.peers` in its own venv (``nvidia-pytriton``; Triton's onnxruntime
backend is not in the wheel, so the model runs in PyTriton's Python stub). Never imported by
the project.
"""

from __future__ import annotations

import argparse

import numpy as np
import onnxruntime as ort
from pytriton.decorators import batch
from pytriton.model_config import ModelConfig, Tensor
from pytriton.triton import Triton, TritonConfig


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--onnx", required=True)
    parser.add_argument("--http-port", type=int, required=True)
    parser.add_argument("--grpc-port", type=int, required=True)
    parser.add_argument("--metrics-port", type=int, required=True)
    parser.add_argument("--max-batch-size", type=int, default=64)
    args = parser.parse_args()
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(args.onnx, options, providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    width = session.get_inputs()[0].shape[1]

    @batch  # type: ignore[misc]
    def infer(features: np.ndarray) -> dict[str, np.ndarray]:
        scores = session.run(None, {input_name: features.astype(np.float32, copy=False)})[0]
        return {"score": scores.reshape(len(features), 1)}

    config = TritonConfig(
        http_address="127.0.0.1",
        http_port=args.http_port,
        grpc_address="127.0.0.1",
        grpc_port=args.grpc_port,
        metrics_port=args.metrics_port,
    )
    with Triton(config=config) as triton:
        triton.bind(
            model_name=args.model,
            infer_func=infer,
            inputs=[Tensor(name="features", dtype=np.float32, shape=(width,))],
            outputs=[Tensor(name="score", dtype=np.float32, shape=(1,))],
            config=ModelConfig(max_batch_size=args.max_batch_size),
        )
        triton.serve()


if __name__ == "__main__":
    main()
