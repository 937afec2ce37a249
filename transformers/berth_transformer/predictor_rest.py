"""The predictor client over Open Inference V2 REST (JSON): one shared ``aiohttp`` session."""

from __future__ import annotations

from typing import Any

import aiohttp
import numpy as np
import orjson

from berth.errors import DeadlineExceededError, DependencyUnavailableError
from berth.observability import outgoing_headers
from berth.wire import INPUT_NAME, OUTPUT_NAME
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


class RestPredictorClient:
    """Open Inference V2 over REST (JSON) through one shared aiohttp session."""

    protocol = "v2"

    def __init__(self, host: str, model_name: str, link: Link) -> None:
        base = host if "://" in host else f"{'https' if link.tls else 'http'}://{host}"
        self.base = f"{base.rstrip('/')}/v2/models/{model_name}"
        self.model_name, self.link, self.timeout_s = model_name, link, link.timeout_s
        self._session: aiohttp.ClientSession | None = None

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            tls = self.link.ssl_context() if self.link.tls else None
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=256, ttl_dns_cache=300, ssl=tls or True),
                json_serialize=lambda obj: orjson.dumps(obj).decode(),
            )
        return self._session

    async def _call(
        self, method: str, url: str, body: bytes | None, request_id: str | None
    ) -> dict[str, Any]:
        return await with_retries(
            lambda left_s: self._call_once(method, url, body, request_id, left_s),
            self.link.retries,
            self.timeout_s,
        )

    async def _call_once(
        self, method: str, url: str, body: bytes | None, request_id: str | None, left_s: float
    ) -> dict[str, Any]:
        headers = {"content-type": "application/json"}
        if request_id:
            headers.update(outgoing_headers(request_id))
        try:
            async with self._get_session().request(
                method,
                url,
                data=body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=left_s),
            ) as resp:
                payload = await resp.read()
                if resp.status != 200:
                    raise from_http_error(resp.status, payload, resp.headers)
        except TimeoutError:
            raise DeadlineExceededError(PREDICTOR) from None
        except aiohttp.ClientError as exc:
            raise DependencyUnavailableError(PREDICTOR, f"{type(exc).__name__}: {exc}") from None
        try:
            result: dict[str, Any] = orjson.loads(payload)
        except orjson.JSONDecodeError:
            raise PredictorError("predictor answered with invalid JSON") from None
        return result

    async def metadata(self) -> dict[str, Any]:
        return await self._call("GET", self.base, None, None)

    async def infer(self, features: np.ndarray, request_id: str) -> Prediction:
        # float64 of each float32 value: its JSON text parses back to the same float32 exactly.
        body = orjson.dumps(
            {
                "id": request_id,
                "inputs": [
                    {
                        "name": INPUT_NAME,
                        "shape": list(features.shape),
                        "datatype": "FP32",
                        "data": features.astype(np.float64).ravel(),
                    }
                ],
            },
            option=orjson.OPT_SERIALIZE_NUMPY,
        )
        with Timed(self.protocol):
            result = await self._call("POST", f"{self.base}/infer", body, request_id)
            for output in result.get("outputs") or ():
                if output.get("name") == OUTPUT_NAME:
                    scores = np.asarray(output.get("data"), dtype=np.float32).ravel()
                    version = str(result.get("model_version") or "")
                    return Prediction(checked_scores(scores, len(features)), version)
            raise PredictorError(f"predictor response has no output {OUTPUT_NAME!r}")

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
