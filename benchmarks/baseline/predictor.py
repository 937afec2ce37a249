"""``python -m benchmarks.baseline.predictor --model_name M --model_dir A --http_port P``.

A plain fp32 predictor: ``model.fp32.onnx`` in ONNX Runtime, KServe V1 in and out, a synchronous
``predict`` (inline on the event loop), one request per run, KServe's default settings.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import kserve
import numpy as np
import onnxruntime as ort
from kserve import model_server

FP32_MODEL = "model.fp32.onnx"


class Fp32Predictor(kserve.Model):  # type: ignore[misc]
    def __init__(self, name: str, model_dir: Path, intra_op_threads: int) -> None:
        super().__init__(name)
        self.model_dir = model_dir
        self.intra_op_threads = intra_op_threads
        self.session: ort.InferenceSession | None = None
        self.input_name = ""

    def load(self) -> bool:
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.intra_op_threads
        self.session = ort.InferenceSession(
            str(self.model_dir / FP32_MODEL), options, providers=["CPUExecutionProvider"]
        )
        self.input_name = self.session.get_inputs()[0].name
        self.ready = True
        return self.ready

    def predict(self, payload: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
        assert self.session is not None
        rows = np.asarray(payload["instances"], dtype=np.float32)
        scores = self.session.run(None, {self.input_name: rows})[0]
        return {"predictions": np.asarray(scores).reshape(-1).tolist()}


def main() -> None:
    parser = argparse.ArgumentParser(parents=[model_server.parser])
    parser.add_argument("--model_dir", required=True)
    parser.add_argument(
        "--intra_op_threads",
        type=int,
        default=1,
        help="ORT threads (0: ORT's default, one per core; 1 serves small batches best on 2 cores)",
    )
    args, _ = parser.parse_known_args()
    model = Fp32Predictor(args.model_name, Path(args.model_dir), args.intra_op_threads)
    model.load()
    kserve.ModelServer().start([model])


if __name__ == "__main__":
    main()
