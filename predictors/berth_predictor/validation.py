"""Request checks against the artifact's metadata, before anything runs.

Each failure is an :class:`~berth.errors.InvalidInputError` whose message names the input
(V2) or field (V1) — and the feature, for a NaN or infinity.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from kserve.protocol.infer_type import InferInput, InferRequest

from berth.errors import InvalidInputError
from berth.wire import OUTPUT_NAME


class RowValidator:
    def __init__(
        self, input_name: str, features: list[str], max_rows: int, output_name: str = OUTPUT_NAME
    ) -> None:
        self.input_name = input_name
        self.features = features
        self.max_rows = max_rows
        self.output_name = output_name

    def v1(self, payload: Any) -> np.ndarray:
        """``{"instances": [[f1, ..., fN], ...]}`` → float32 [n, N]."""
        if not isinstance(payload, dict) or "instances" not in payload:
            raise InvalidInputError("missing field 'instances'", field="instances")
        instances = payload["instances"]
        if not isinstance(instances, list) or not instances:
            raise InvalidInputError("'instances' must be a non-empty list of rows", "instances")
        self._check_rows(len(instances), "instances")
        with np.errstate(over="ignore"):  # beyond FP32's range is inf, refused as such
            return self._finite(self._instances(instances), "instances")

    def _instances(self, instances: list[Any]) -> np.ndarray:
        """One numpy conversion for well-formed rows; row by row only to name a bad one."""
        width = len(self.features)
        try:
            values = np.asarray(instances)
        except ValueError:  # ragged
            values = np.empty(0)
        if values.ndim == 2 and values.shape[1] == width and values.dtype.kind in "fiu":
            return values.astype(np.float32)
        for i, row in enumerate(instances):
            if not isinstance(row, list) or len(row) != width:
                raise InvalidInputError(
                    f"instances[{i}]: expected a list of {width} numbers in feature order",
                    field=f"instances[{i}]",
                )
            if any(isinstance(v, bool) or not isinstance(v, int | float) for v in row):
                raise InvalidInputError(f"instances[{i}]: non-numeric value", f"instances[{i}]")
        raise InvalidInputError("instances: rows must be lists of numbers", field="instances")

    def v2(self, request: InferRequest) -> np.ndarray:
        """One FP32 input of shape [n, N] named like the model's input."""
        names = [i.name for i in request.inputs]
        unknown = [n for n in names if n != self.input_name]
        if unknown:
            raise InvalidInputError(
                f"unknown input {unknown[0]!r}; the model takes {self.input_name!r}",
                field=unknown[0],
            )
        if self.input_name not in names:
            raise InvalidInputError(f"missing input {self.input_name!r}", field=self.input_name)
        if len(names) > 1:
            raise InvalidInputError(f"input {self.input_name!r} given twice", self.input_name)
        tensor = request.inputs[0]
        field = self.input_name
        if tensor.datatype != "FP32":
            raise InvalidInputError(
                f"input {field!r}: datatype {tensor.datatype}, expected FP32", field=field
            )
        shape = list(tensor.shape)
        width = len(self.features)
        if len(shape) != 2 or shape[1] != width or shape[0] < 1:
            raise InvalidInputError(
                f"input {field!r}: shape {shape}, expected [n, {width}]", field=field
            )
        self._check_rows(shape[0], field)
        self._check_outputs(request)
        return self._finite(self._values(tensor, shape), field)

    def _values(self, tensor: InferInput, shape: list[int]) -> np.ndarray:
        field = self.input_name
        try:
            with np.errstate(over="ignore"):  # beyond FP32's range is inf, refused as such
                if isinstance(tensor.data, list) and tensor.data:  # JSON or gRPC contents
                    values = np.asarray(tensor.data)
                    if values.dtype.kind not in "fiu":
                        raise InvalidInputError(
                            f"input {field!r}: data must be numbers", field=field
                        )
                    return values.astype(np.float32).reshape(shape)
                # binary: REST extension or gRPC raw_input_contents
                return np.asarray(tensor.as_numpy(), dtype=np.float32).reshape(shape)
        except (ValueError, TypeError) as exc:
            raise InvalidInputError(
                f"input {field!r}: data does not match shape {shape} ({exc})", field=field
            ) from None

    def _check_outputs(self, request: InferRequest) -> None:
        for i, output in enumerate(request.request_outputs or ()):
            if output.name != self.output_name:
                raise InvalidInputError(
                    f"unknown output {output.name!r}; the model returns {self.output_name!r}",
                    field=f"outputs[{i}].name",
                )

    def _check_rows(self, n: int, field: str) -> None:
        if n > self.max_rows:
            raise InvalidInputError(
                f"{field}: {n} rows, at most {self.max_rows} per request", field=field
            )

    def _finite(self, rows: np.ndarray, field: str) -> np.ndarray:
        bad = ~np.isfinite(rows)
        if bad.any():
            row, col = (int(v) for v in np.argwhere(bad)[0])
            raise InvalidInputError(
                f"{field}: row {row}, feature {self.features[col]!r} is not finite "
                f"({rows[row, col]})",
                field=field,
            )
        return np.ascontiguousarray(rows)
