"""The predictor client over Open Inference V2 REST: pooled keep-alive connections of Berth's
lean HTTP/1.1 client (:mod:`berth_transformer.http_client`).

A retry (:func:`with_retries`: the predictor did not answer, or answered 502/503) goes over a
new connection of its own, closed after it, never a pooled one: behind an L4 Service each
connection stays on one replica, and the pool may hold more connections to the replica that
just refused (a draining one answers each of them 503), while a new connection goes through the
Service to a live one. The gRPC hop does the same by renewing its channel.

Inference uses the OIP binary tensor extension both ways: the request is the JSON header
(its length in ``Inference-Header-Content-Length``, the input's ``binary_data_size``) then the
rows as little-endian FP32 bytes, and asks for ``binary_data_output``; the answer is read as
binary when it carries the header length, as JSON otherwise (errors, metadata).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import numpy as np
import orjson

from berth.errors import DeadlineExceededError, DependencyUnavailableError
from berth.observability import outgoing_headers
from berth.serving.codec import BINARY_SIZE
from berth.wire import HEADER_LENGTH, INPUT_NAME, OUTPUT_NAME
from berth_transformer.http_client import HttpClient
from berth_transformer.predictor_client import (
    PREDICTOR,
    Link,
    Prediction,
    PredictorError,
    Timed,
    checked_scores,
    from_http_error,
    with_retries,
)

JSON_HEADERS = {"content-type": "application/json"}
BINARY_HEADERS = {"content-type": "application/octet-stream"}


class RestPredictorClient:
    """Open Inference V2 over REST (binary tensors) on pooled keep-alive connections; a retry
    on a new connection of its own (module docstring)."""

    protocol = "v2"

    def __init__(self, host: str, model_name: str, link: Link) -> None:
        url = urlsplit(host if "://" in host else f"{'https' if link.tls else 'http'}://{host}")
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"predictor host {host!r}: expected [http[s]://]host[:port]")
        tls = link.ssl_context() if url.scheme == "https" else None
        self._http = HttpClient(url.hostname, url.port or (443 if tls else 80), tls)
        self.base = f"{url.path.rstrip('/')}/v2/models/{model_name}"
        self.model_name, self.link, self.timeout_s = model_name, link, link.timeout_s

    async def _call(
        self, method: str, target: str, body: bytes | None, headers: dict[str, str]
    ) -> tuple[dict[str, Any], memoryview]:
        return await with_retries(
            lambda left_s, retry: self._call_once(method, target, body, headers, left_s, retry),
            self.link.retries,
            self.timeout_s,
        )

    async def _call_once(
        self,
        method: str,
        target: str,
        body: bytes | None,
        headers: dict[str, str],
        left_s: float,
        fresh: bool,
    ) -> tuple[dict[str, Any], memoryview]:
        try:
            answer = await self._http.request(method, target, headers, body, left_s, fresh)
        except TimeoutError:
            raise DeadlineExceededError(PREDICTOR) from None
        except OSError as exc:  # refused, reset, closed before answering, TLS
            raise DependencyUnavailableError(PREDICTOR, f"{type(exc).__name__}: {exc}") from None
        if answer.status != 200:
            raise from_http_error(answer.status, answer.body, answer.headers)
        return split_answer(answer.body, answer.headers.get(HEADER_LENGTH))

    async def metadata(self) -> dict[str, Any]:
        return (await self._call("GET", self.base, None, JSON_HEADERS))[0]

    async def infer(self, features: np.ndarray, request_id: str) -> Prediction:
        body, header_length = binary_request(features, request_id)
        headers = {**BINARY_HEADERS, HEADER_LENGTH: header_length}
        if request_id:
            headers.update(outgoing_headers(request_id))
        with Timed(self.protocol):
            result, tail = await self._call("POST", f"{self.base}/infer", body, headers)
            scores = output_scores(result, tail)
            version = str(result.get("model_version") or "")
            return Prediction(checked_scores(scores, len(features)), version)

    async def close(self) -> None:
        await self._http.close()


def binary_request(features: np.ndarray, request_id: str) -> tuple[bytes, str]:
    """The inference request with the rows as binary FP32; the JSON header's length."""
    data = np.ascontiguousarray(features, dtype="<f4")
    header = orjson.dumps(
        {
            "id": request_id,
            "inputs": [
                {
                    "name": INPUT_NAME,
                    "shape": list(data.shape),
                    "datatype": "FP32",
                    "parameters": {BINARY_SIZE: data.nbytes},
                }
            ],
            "parameters": {"binary_data_output": True},
        }
    )
    return header + data.tobytes(), str(len(header))


def split_answer(payload: bytes, header_length: str | None) -> tuple[dict[str, Any], memoryview]:
    """An answer's JSON part and the binary data after it (empty for a JSON answer)."""
    body = memoryview(payload)
    split = len(body)
    if header_length is not None:
        if not header_length.isdigit() or not 0 < int(header_length) <= len(body):
            raise PredictorError(f"predictor answered a bad {HEADER_LENGTH} {header_length!r}")
        split = int(header_length)
    try:
        result = orjson.loads(body[:split])
    except orjson.JSONDecodeError:
        raise PredictorError("predictor answered with invalid JSON") from None
    if not isinstance(result, dict):
        raise PredictorError("predictor answered with invalid JSON")
    return result, body[split:]


def output_scores(result: dict[str, Any], tail: memoryview) -> np.ndarray:
    """The score output, in JSON ``data`` or as its ``binary_data_size`` bytes of the tail
    (the outputs' binary parts follow the header in output order)."""
    offset = 0
    for output in result.get("outputs") or ():
        size = (output.get("parameters") or {}).get(BINARY_SIZE)
        if output.get("name") == OUTPUT_NAME:
            if size is None:
                return np.asarray(output.get("data"), dtype=np.float32).ravel()
            if output.get("datatype") != "FP32" or offset + size > len(tail) or size % 4:
                raise PredictorError(f"predictor answered a bad binary output {OUTPUT_NAME!r}")
            return np.frombuffer(tail[offset : offset + size], dtype="<f4")
        offset += size or 0
    raise PredictorError(f"predictor response has no output {OUTPUT_NAME!r}")
