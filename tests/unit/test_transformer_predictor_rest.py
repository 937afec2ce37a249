"""The REST hop's binary tensors (berth_transformer.predictor_rest) against the decoder and the
answer the predictor uses (berth.serving.codec, KServe's ``InferResponse.to_rest``); the real
processes are in tests/integration/test_transformer_serving.py."""

from __future__ import annotations

import numpy as np
import orjson
import pytest
from kserve.protocol.infer_type import InferOutput, InferResponse

from berth.serving.codec import RestBody
from berth_transformer.predictor_client import PredictorError
from berth_transformer.predictor_rest import binary_request, output_scores, split_answer


def test_the_binary_request_decodes_to_the_same_float32_rows() -> None:
    rows = np.random.default_rng(3).normal(size=(10, 7)).astype(np.float32)
    rows[0, 0], rows[1, 1] = np.float32(1e-38), np.float32(-3.4e38)
    body, header_length = binary_request(rows, "r-1")
    request = RestBody("v2", body, header_length).decode("m")
    assert request.id == "r-1" and request.use_binary_outputs
    (tensor,) = request.inputs
    assert (tensor.name, tensor.datatype, tensor.shape) == ("features", "FP32", [10, 7])
    decoded = tensor.as_numpy().reshape(10, 7)
    assert decoded.dtype == np.float32 and decoded.tobytes() == rows.tobytes()


def test_a_float64_matrix_is_sent_as_the_float32_the_json_hop_sent() -> None:
    rows = np.array([[0.1, 4.2], [1e-3, 7.0]])
    body, header_length = binary_request(rows, "r")
    decoded = RestBody("v2", body, header_length).decode("m").inputs[0].as_numpy()
    assert decoded.tobytes() == rows.astype(np.float32).ravel().tobytes()


def _answer(scores: np.ndarray, binary: bool) -> tuple[bytes, str | None]:
    outputs = [InferOutput("other", [2], "INT64"), InferOutput("score", [len(scores)], "FP32")]
    outputs[0].set_data_from_numpy(np.array([5, 6], np.int64), binary_data=binary)
    outputs[1].set_data_from_numpy(scores, binary_data=binary)
    response = InferResponse("r", "m", outputs, model_version="v7", use_binary_outputs=binary)
    payload, json_length = response.to_rest()
    if json_length is None:
        return orjson.dumps(payload), None
    return payload, str(json_length)


@pytest.mark.parametrize("binary", [True, False])
def test_scores_are_read_from_a_binary_or_a_json_answer(binary: bool) -> None:
    scores = np.array([0.25, 0.125, 1e-7], np.float32)
    result, tail = split_answer(*_answer(scores, binary))
    assert result["model_version"] == "v7" and (len(tail) > 0) == binary
    read = output_scores(result, tail)
    assert read.dtype == np.float32 and read.tobytes() == scores.tobytes()


def test_a_malformed_answer_is_a_predictor_error() -> None:
    payload, length = _answer(np.array([0.5], np.float32), binary=True)
    assert length is not None
    for bad_length in ("0", str(len(payload) + 1), "x"):
        with pytest.raises(PredictorError, match="inference-header-content-length"):
            split_answer(payload, bad_length)
    with pytest.raises(PredictorError, match="invalid JSON"):
        split_answer(payload, str(int(length) - 1))
    result, tail = split_answer(payload, length)
    with pytest.raises(PredictorError, match="bad binary output"):
        output_scores(result, tail[:-1])
    with pytest.raises(PredictorError, match="no output"):
        output_scores({"outputs": [{"name": "other", "data": [1]}]}, memoryview(b""))
