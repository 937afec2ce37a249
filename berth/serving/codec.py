"""REST bodies to KServe's request types, every structural fault an ``InvalidInputError``.

KServe's own V2 decoding goes through pydantic (slow, 422 on a bad body) and its binary
tensor path turns a short buffer or a missing key into a 500; this one parses with orjson,
reads the binary tensor extension (``Inference-Header-Content-Length``: the JSON header, then
each input's ``binary_data_size`` bytes in input order, little-endian), and names what is
wrong. Both containers decode V2 REST with it; checks against a model (names, datatype,
shape, values) are that model's (the predictor's :mod:`berth_predictor.validation`, the
transformer's :mod:`berth_transformer.schema`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
from kserve.protocol.infer_type import InferInput, InferRequest, RequestedOutput
from kserve.utils.numpy_codec import to_np_dtype

from berth.errors import InvalidInputError, quote
from berth.wire import HEADER_LENGTH

BINARY_SIZE = "binary_data_size"


@dataclass(frozen=True)
class RestBody:
    """A REST body as received; the model decodes it, so its faults are counted like others."""

    protocol: str  # "v1" | "v2"
    raw: bytes
    header_length: str | None = None  # Inference-Header-Content-Length (V2 binary extension)

    @property
    def label(self) -> str:
        return "v2-binary" if self.header_length is not None else self.protocol

    def decode(self, model_name: str) -> dict[str, Any] | InferRequest:
        if self.protocol == "v1":
            return _object(self.raw)
        return decode_v2(self.raw, self.header_length, model_name)


def _object(raw: bytes | memoryview) -> dict[str, Any]:
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        hint = "; NaN and Infinity are not JSON numbers" if _has_non_finite(raw) else ""
        raise InvalidInputError(f"request body is not valid JSON ({exc}){hint}", "body") from None
    if not isinstance(doc, dict):
        raise InvalidInputError("request body must be a JSON object", field="body")
    return doc


def _has_non_finite(raw: bytes | memoryview) -> bool:
    text = bytes(raw)
    return b"NaN" in text or b"Infinity" in text


def decode_v2(raw: bytes, header_length: str | None, model_name: str) -> InferRequest:
    """An OIP V2 inference request, JSON or with the binary tensor extension."""
    body = memoryview(raw)
    split = _header_length(header_length, len(body))
    doc = _object(body[:split])
    tail = body[split:]
    inputs_doc = doc.get("inputs")
    if not isinstance(inputs_doc, list):
        raise InvalidInputError("'inputs' must be a list of input tensors", field="inputs")
    inputs, offset = [], 0
    for i, item in enumerate(inputs_doc):
        tensor, used = _input(item, i, tail[offset:])
        inputs.append(tensor)
        offset += used
    if offset != len(tail):
        raise InvalidInputError(
            f"{len(tail)} bytes follow the JSON header but the inputs' {BINARY_SIZE} add up "
            f"to {offset}",
            field=BINARY_SIZE,
        )
    return InferRequest(
        model_name=model_name,
        infer_inputs=inputs,
        request_id=_optional(doc, "id", str, "id"),
        parameters=_optional(doc, "parameters", dict, "parameters"),
        request_outputs=_outputs(doc.get("outputs")),
    )


def _header_length(value: str | None, size: int) -> int:
    if value is None:
        return size
    if not value.strip().isdigit() or not 0 < int(value) <= size:
        raise InvalidInputError(
            f"{HEADER_LENGTH} header {value!r} is not a JSON length within the {size}-byte body",
            field=HEADER_LENGTH,
        )
    return int(value)


def _input(item: object, index: int, tail: memoryview) -> tuple[InferInput, int]:
    where = f"inputs[{index}]"
    if not isinstance(item, dict):
        raise InvalidInputError(f"{where} must be an object", field=where)
    name = _required(item, "name", str, f"{where}.name")
    datatype = _required(item, "datatype", str, f"input {quote(name)} datatype")
    shape = _required(item, "shape", list, f"input {quote(name)} shape")
    if not all(isinstance(d, int) and not isinstance(d, bool) for d in shape):
        raise InvalidInputError(
            f"input {quote(name)}: shape must be a list of integers", field=name
        )
    parameters = _optional(item, "parameters", dict, f"input {quote(name)} parameters") or {}
    if "data" in item:
        if not isinstance(item["data"], list):
            raise InvalidInputError(f"input {quote(name)}: 'data' must be a list", field=name)
        return InferInput(name, shape, datatype, item["data"], parameters), 0
    if BINARY_SIZE not in parameters:
        raise InvalidInputError(
            f"input {quote(name)}: needs 'data' or parameters.{BINARY_SIZE}", field=name
        )
    return _binary_input(name, shape, datatype, parameters, tail)


def _binary_input(
    name: str, shape: list[int], datatype: str, parameters: dict[str, Any], tail: memoryview
) -> tuple[InferInput, int]:
    size = parameters[BINARY_SIZE]
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise InvalidInputError(
            f"input {quote(name)}: {BINARY_SIZE} must be an integer", field=name
        )
    if size > len(tail):
        raise InvalidInputError(
            f"input {quote(name)}: {BINARY_SIZE} {size} exceeds the {len(tail)} bytes left in "
            "the body",
            field=name,
        )
    np_type = to_np_dtype(datatype.upper())
    if np_type is None or np_type is np.object_:
        raise InvalidInputError(
            f"input {quote(name)}: datatype {datatype!r} cannot be sent as binary data", field=name
        )
    dtype = np.dtype(np_type).newbyteorder("<")
    if size % dtype.itemsize:
        raise InvalidInputError(
            f"input {quote(name)}: {BINARY_SIZE} {size} is not a whole number of {datatype} values",
            field=name,
        )
    params = {k: v for k, v in parameters.items() if k != BINARY_SIZE}
    data = np.frombuffer(tail[:size], dtype=dtype)
    return InferInput(name, shape, datatype, data, params), size


def _outputs(value: object) -> list[RequestedOutput] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise InvalidInputError("'outputs' must be a list", field="outputs")
    outputs = []
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            raise InvalidInputError(f"outputs[{i}] must be an object", field=f"outputs[{i}]")
        name = _required(item, "name", str, f"outputs[{i}].name")
        params = _optional(item, "parameters", dict, f"outputs[{i}].parameters")
        outputs.append(RequestedOutput(name, params))
    return outputs or None


def _required(doc: dict[str, Any], key: str, kind: type, field: str) -> Any:
    if doc.get(key) is None:
        raise InvalidInputError(f"{field} is missing", field=field)
    return _optional(doc, key, kind, field)


def _optional(doc: dict[str, Any], key: str, kind: type, field: str) -> Any:
    value = doc.get(key)
    if value is not None and not isinstance(value, kind):
        raise InvalidInputError(f"{field} must be {_KINDS[kind]}", field=field)
    return value


_KINDS: dict[type, str] = {str: "a string", list: "a list", dict: "an object"}
