"""Request checks against the artifact's contract (V1 rows, V2 tensors), no server."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from kserve.protocol.infer_type import InferInput, InferRequest, RequestedOutput

from berth.errors import InvalidInputError
from berth_predictor.validation import RowValidator

FEATURES = [f"f{i}" for i in range(20)]
V = RowValidator("features", FEATURES, max_rows=8, output_name="score")


def _v2(*tensors: InferInput, outputs: list[RequestedOutput] | None = None) -> InferRequest:
    return InferRequest("m", list(tensors), request_outputs=outputs)


def _tensor(data: Any, shape: list[int] | None = None, **kw: Any) -> InferInput:
    return InferInput(
        kw.get("name", "features"), shape or [1, 20], kw.get("datatype", "FP32"), data
    )


def test_v1_rows_become_float32_in_order() -> None:
    rows = np.random.default_rng(0).random((3, 20))
    out = V.v1({"instances": rows.tolist()})
    assert out.dtype == np.float32 and out.shape == (3, 20)
    np.testing.assert_allclose(out, rows.astype(np.float32))


def test_v2_accepts_flat_nested_and_binary_data() -> None:
    rows = np.random.default_rng(1).random((2, 20)).astype(np.float32)
    for data in (rows.ravel().tolist(), rows.tolist(), rows.ravel()):
        np.testing.assert_array_equal(V.v2(_v2(_tensor(data, [2, 20]))), rows)


BAD_V1: list[tuple[Any, str]] = [
    ([1, 2], "instances"),
    ({"rows": []}, "instances"),
    ({"instances": []}, "instances"),
    ({"instances": [[1.0] * 19]}, "instances[0]"),
    ({"instances": [[1.0] * 20, [1.0] * 21]}, "instances[1]"),
    ({"instances": [[1.0] * 20, ["x"] * 20]}, "instances[1]"),
    ({"instances": [[True] * 20]}, "instances[0]"),
    ({"instances": [[None] * 20]}, "instances[0]"),
    ({"instances": [[1.0] * 20] * 9}, "at most 8"),
    ({"instances": [[1.0] * 19 + [float("nan")]]}, "'f19'"),
    ({"instances": [[1.0, 1e39] + [1.0] * 18]}, "'f1'"),
]


@pytest.mark.parametrize(("payload", "named"), BAD_V1)
def test_bad_v1_names_the_field(payload: Any, named: str) -> None:
    with pytest.raises(InvalidInputError) as err:
        V.v1(payload)
    assert named in err.value.message


BAD_V2: list[tuple[InferRequest, str]] = [
    (_v2(), "missing input 'features'"),
    (_v2(_tensor([1.0] * 20, name="x")), "'x'"),
    (_v2(_tensor([1.0] * 20), _tensor([1.0] * 20)), "given twice"),
    (_v2(_tensor([1] * 20, datatype="INT64")), "expected FP32"),
    (_v2(_tensor([1.0] * 19, [1, 19])), "expected [n, 20]"),
    (_v2(_tensor([], [0, 20])), "expected [n, 20]"),
    (_v2(_tensor([1.0] * 20, [1, 20, 1])), "expected [n, 20]"),
    (_v2(_tensor([1.0] * 19, [1, 20])), "does not match shape"),
    (_v2(_tensor(["1.5"] * 20)), "data must be numbers"),
    (_v2(_tensor([True] * 20)), "data must be numbers"),
    (_v2(_tensor([1.0] * 180, [9, 20])), "at most 8"),
    (_v2(_tensor([float("inf")] + [1.0] * 19)), "'f0' is not finite"),
    (_v2(_tensor([1.0] * 20), outputs=[RequestedOutput("nope")]), "unknown output 'nope'"),
]


@pytest.mark.parametrize(("request_", "named"), BAD_V2)
def test_bad_v2_names_the_input(request_: InferRequest, named: str) -> None:
    with pytest.raises(InvalidInputError) as err:
        V.v2(request_)
    assert named in err.value.message
    assert err.value.status == 400
