"""An MLServer runtime for the benchmark's predictor peer: the same int8 ``model.onnx`` in ONNX
Runtime, one intra-op thread, as Berth's predictor runs it.

Loaded by MLServer in its own venv (``benchmarks/.venvs/mlserver``, made by
:mod:`benchmarks.peers`), never by the project: it imports ``mlserver``. Written the way
MLServer's docs write a custom runtime (``MLModel`` with async ``load`` / ``predict``, the
``NumpyCodec`` for tensors); adaptive batching is MLServer's own (``max_batch_size`` /
``max_batch_time`` in ``model-settings.json``).
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse
from mlserver.utils import get_model_uri


class OrtRuntime(MLModel):  # type: ignore[misc]
    async def load(self) -> bool:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        path = await get_model_uri(self._settings)
        self._session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        self._input = self._session.get_inputs()[0].name
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        rows = NumpyCodec.decode_input(payload.inputs[0]).astype(np.float32, copy=False)
        scores = self._session.run(None, {self._input: rows})[0].reshape(len(rows), -1)
        return InferenceResponse(
            model_name=self.name,
            model_version=self.version,
            outputs=[NumpyCodec.encode_output("score", scores)],
        )
