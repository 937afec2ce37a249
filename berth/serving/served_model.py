"""``ServedModel``: the ``__call__`` both containers' KServe models share.

Every call runs KServe's handler pipeline (preprocess -> validate -> predict or explain ->
postprocess, with response headers) and gets:

1. its request id (the caller's valid ``x-request-id``, or a new one written into the headers,
   which KServe echoes) and W3C trace context, bound for the logs (:class:`Served`);
2. admission: the subclass's :meth:`ServedModel.admission` (readiness, in-flight bound, deadline);
3. its outcome: whatever it raises is mapped once (:func:`berth.serving.errors.served`), setting
   the outcome label (``"200"``, ``"400"``, ``"503"`` ...);
4. its latency in ``request_seconds`` labelled ``(protocol, outcome)``, then
   :meth:`ServedModel.finished`, and a DEBUG line ``request done``.

The pipeline is :meth:`ServedModel.run_handlers`, not KServe's ``Model.__call__``: the same
steps and the same timing trace line (``--enable_latency_logging``), without what KServe's
version spends on every call for handlers that may be sync (an ``inspect`` check per handler)
and on latency histograms Berth takes off ``/metrics`` (:mod:`berth.serving.metrics`).
Handlers are async and take the response headers (``return_response_headers=True``).

API for a subclass (the predictor's ``OnnxPredictor``, the transformer's ``FeatureTransformer``):

- ``request_seconds`` (class attribute): a Prometheus histogram labelled ``protocol, outcome``,
  best in a :class:`berth.serving.metrics.LabelCache` (its children bound once).
- ``served_log_name`` (class attribute): the logger of the DEBUG ``request done`` line.
- ``admission(verb) -> AbstractAsyncContextManager[None]`` (required): entered inside the error
  mapping, around KServe's call; raise a ``BerthError`` to refuse.
- ``protocol_of(body) -> str``: the metrics' protocol label; by default ``RestBody.label``, ``"v2"``
  or ``"grpc-v2"`` for an ``InferRequest``, else ``"v1"``.
- ``finished(call, body, protocol, elapsed_s, verb)``: after the latency is observed, with the
  body the call was given (default: nothing).
- Per-call state travels in one request object that preprocess returns and predict/postprocess
  receive (the predictor's ``Scoring``, the transformer's ``Ranking``), never in a ContextVar.
"""

from __future__ import annotations

import logging
import time
from contextlib import AbstractAsyncContextManager
from typing import Any, ClassVar

import kserve
from kserve.logging import trace_logger
from kserve.model import InferenceVerb
from kserve.protocol.infer_type import InferRequest

from berth.observability import get_logger
from berth.serving.codec import RestBody
from berth.serving.errors import Served, served


def protocol_label(body: object) -> str:
    """``v1``, ``v2``, ``grpc-v2``, or a REST body's own label (``v2-binary`` ...)."""
    if isinstance(body, RestBody):
        return body.label
    if isinstance(body, InferRequest):
        return "grpc-v2" if body.from_grpc else "v2"
    return "v1"


class ServedModel(kserve.Model):  # type: ignore[misc]
    """A KServe model with Berth's request id, admission, outcome and latency (module doc)."""

    request_seconds: ClassVar[Any]
    served_log_name: ClassVar[str] = __name__
    _served_log: ClassVar[logging.Logger] = logging.getLogger(__name__)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """The ``request done`` logger, looked up once per class, not on every call."""
        super().__init_subclass__(**kwargs)
        cls._served_log = logging.getLogger(cls.served_log_name)

    def admission(self, verb: InferenceVerb) -> AbstractAsyncContextManager[None]:
        raise NotImplementedError

    def protocol_of(self, body: object) -> str:
        return protocol_label(body)

    def finished(
        self, call: Served, body: Any, protocol: str, elapsed_s: float, verb: InferenceVerb
    ) -> None:
        """After each call (its outcome in ``call.outcome``); nothing by default."""

    async def __call__(
        self,
        body: Any,
        headers: dict[str, str] | None = None,
        verb: InferenceVerb = InferenceVerb.PREDICT,
    ) -> Any:
        headers = headers if headers is not None else {}
        call = Served.of(headers)
        protocol = self.protocol_of(body)
        started = time.perf_counter()
        try:
            with served(call):
                async with self.admission(verb):
                    return await self.run_handlers(body, headers, verb)
        finally:
            elapsed = time.perf_counter() - started
            self.request_seconds.labels(protocol, call.outcome).observe(elapsed)
            self.finished(call, body, protocol, elapsed, verb)
            if self._served_log.isEnabledFor(logging.DEBUG):
                get_logger(self.served_log_name).debug(
                    "request done",
                    protocol=protocol,
                    status=call.outcome,
                    seconds=elapsed,
                    request_id=call.request_id,
                    trace_id=(call.traceparent or "--").split("-")[1],
                )

    async def run_handlers(
        self, body: Any, headers: dict[str, str], verb: InferenceVerb
    ) -> tuple[Any, dict[str, str]]:
        """preprocess -> validate -> predict (or explain) -> postprocess, as KServe's
        ``Model.__call__``: the answer and its response headers; KServe's timing trace line
        when its latency logging is on."""
        response_headers: dict[str, str] = {}
        started = time.perf_counter()
        payload = await self.preprocess(body, headers)
        preprocessed = time.perf_counter()
        payload = self.validate(payload)
        if verb == InferenceVerb.PREDICT:
            response = await self.predict(payload, headers, response_headers)
        elif verb == InferenceVerb.EXPLAIN:
            response = await self.explain(payload, headers)
        else:
            raise NotImplementedError(verb)
        predicted = time.perf_counter()
        response = await self.postprocess(response, headers, response_headers)
        if self.enable_latency_logging:
            ms = {
                "preprocess_ms": preprocessed - started,
                "explain_ms": predicted - preprocessed if verb == InferenceVerb.EXPLAIN else 0,
                "predict_ms": predicted - preprocessed if verb == InferenceVerb.PREDICT else 0,
                "postprocess_ms": time.perf_counter() - predicted,
            }
            trace_logger.info(
                f"requestId: {headers.get('x-request-id', 'N.A.')}, "
                + ", ".join(f"{key}: {round(s * 1000, 9)}" for key, s in ms.items())
            )
        return response, response_headers
