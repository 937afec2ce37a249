"""``OnnxPredictor``: the KServe model that serves a Berth artifact with ONNX Runtime.

``load`` verifies the artifact and opens the session; ``start`` (called by KServe once the
model is registered) warms it up in the background and only then reports ready.
``preprocess`` decodes and validates, ``predict`` scores through the batcher (off the event
loop), ``postprocess`` answers in the caller's protocol with the model version.
"""

from __future__ import annotations

import asyncio
import contextvars
import random
import threading
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import numpy as np
from kserve.model import InferenceVerb
from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse

from berth.artifact import ArtifactMetadata, verify_artifact
from berth.errors import BerthError
from berth.observability import REQUEST_ID_HEADER, get_logger, new_request_id, request_id_var
from berth.serving.codec import RestBody
from berth.serving.guard import Guard
from berth.serving.served_model import ServedModel
from berth.signing import verify_signature
from berth.wire import MODEL_VERSION_HEADER, OUTPUT_NAME
from berth_predictor import metrics
from berth_predictor.batcher import Batcher
from berth_predictor.session import OnnxSession
from berth_predictor.settings import PredictorSettings
from berth_predictor.validation import RowValidator

log = get_logger(__name__)


class WarmingUpError(BerthError):
    """Work before the warm-up finished: 503 + Retry-After / UNAVAILABLE. (KServe's own
    ModelNotReady becomes UNKNOWN over gRPC: its interceptor reads a missing ``reason``.)"""

    status = 503
    grpc_code = grpc.StatusCode.UNAVAILABLE
    public_message = "model is warming up, retry later"
    log_each = False


class InjectedFaultError(BerthError):
    """A failure injected by ``BERTH_PREDICTOR_FAULT_ERROR_RATE`` (benchmarks only): a 500."""

    public_message = "injected fault (BERTH_PREDICTOR_FAULT_ERROR_RATE)"
    log_each = False


@dataclass
class Scoring:
    """One request between the handlers: what was asked, its rows, then its scores."""

    request: dict[str, Any] | InferRequest
    rows: np.ndarray
    scores: np.ndarray | None = None


class OnnxPredictor(ServedModel):
    ready: bool
    request_seconds = metrics.REQUEST_SECONDS
    served_log_name = __name__

    def __init__(self, name: str, model_dir: Path, settings: PredictorSettings) -> None:
        super().__init__(name, return_response_headers=True)
        self.model_dir = Path(model_dir)
        self.settings = settings
        self.meta: ArtifactMetadata | None = None
        self.session: OnnxSession | None = None
        self.validator: RowValidator | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._batcher: Batcher | None = None
        self._faults = random.Random()
        self.guard = Guard(
            settings.max_inflight,
            setting="BERTH_PREDICTOR_MAX_INFLIGHT",
            on_reject=lambda reason: metrics.REJECTED.inc(),
        )

    @property
    def version(self) -> str:
        return self.meta.version if self.meta else ""

    @property
    def output_name(self) -> str:
        return self.meta.outputs[0].name if self.meta else OUTPUT_NAME

    def load(self) -> bool:
        """Verify every digest (an ArtifactError names the file) and, with VERIFY_KEY, the
        signature, then open the session.

        Once only: KServe's data plane calls ``load`` again for a model that is not ready
        (a gRPC request during the warm-up), which must not reopen anything."""
        if self.session is not None:
            return bool(self.ready)
        self.meta = verify_artifact(self.model_dir)
        if self.settings.verify_key is not None:
            verify_signature(self.model_dir, self.settings.verify_key)
        self.session = OnnxSession(self.model_dir, self.meta, self.settings)
        self.validator = RowValidator(
            self.meta.inputs[0].name,
            self.meta.feature_names,
            self.settings.max_request_rows,
            self.output_name,
        )
        metrics.MODEL_INFO.labels(self.name, self.meta.version, self.meta.feature_service).set(1)
        self.ready = True  # KServe registers only ready models; start() withholds readiness
        return True

    def start(self) -> None:
        """Warm up off the main thread; ready (health and model) only once it is done."""
        self.ready = False
        context = contextvars.copy_context()  # the logs' bound fields (component)
        threading.Thread(
            target=context.run, args=(self._warm_up,), name="berth-warmup", daemon=True
        ).start()

    def _warm_up(self) -> None:
        assert self.session is not None and self.meta is not None
        started = time.perf_counter()
        center = np.array([f.default for f in self.meta.features], dtype=np.float32)
        self.session.warm_up(self.settings.warmup_runs, self.settings.max_batch_rows, center)
        self.ready = True
        log.info(
            "model ready",
            model_version=self.version,
            warmup_seconds=round(time.perf_counter() - started, 3),
        )

    def validate(self, payload: Any) -> Any:
        return payload  # preprocess checks against the artifact

    def admission(self, verb: InferenceVerb) -> AbstractAsyncContextManager[None]:
        return self._admitted()

    @asynccontextmanager
    async def _admitted(self) -> AsyncIterator[None]:
        """Ready, then the overload bound (a no-op when the REST middleware admitted it)."""
        if not self.ready:
            raise WarmingUpError()
        with self.guard.admit():
            metrics.INFLIGHT.inc()
            try:
                yield
            finally:
                metrics.INFLIGHT.dec()

    async def preprocess(
        self, payload: dict[str, Any] | InferRequest | RestBody, headers: Any = None
    ) -> Scoring:
        assert self.validator is not None
        if isinstance(payload, RestBody):
            payload = payload.decode(self.name)
        if isinstance(payload, InferRequest):
            return Scoring(payload, self.validator.v2(payload))
        return Scoring(payload, self.validator.v1(payload))

    async def predict(
        self, scoring: Scoring, headers: Any = None, response_headers: Any = None
    ) -> Scoring:
        if self.settings.fault_latency_ms or self.settings.fault_error_rate:
            await self._inject_fault()
        scoring.scores = await self._score(scoring.rows)
        return scoring

    async def _inject_fault(self) -> None:
        """The benchmark-only fault hook (``BERTH_PREDICTOR_FAULT_*``; off by default)."""
        await asyncio.sleep(self.settings.fault_latency_ms / 1000)
        if self._faults.random() < self.settings.fault_error_rate:
            raise InjectedFaultError()

    async def postprocess(
        self,
        scoring: Scoring,
        headers: dict[str, str] | None = None,
        response_headers: dict[str, str] | None = None,
    ) -> dict[str, Any] | InferResponse:
        assert scoring.scores is not None
        scores, request = scoring.scores, scoring.request
        if response_headers is not None:
            response_headers[MODEL_VERSION_HEADER] = self.version
            response_headers[REQUEST_ID_HEADER] = request_id_var.get() or ""
        if not isinstance(request, InferRequest):
            return {"predictions": scores.tolist(), "model_version": self.version}
        binary = bool(request.use_binary_outputs)
        output = InferOutput(self.output_name, [len(scores)], "FP32")
        # gRPC answers in raw_output_contents; REST in JSON unless binary was asked for.
        output.set_data_from_numpy(scores, binary_data=binary or bool(request.from_grpc))
        return InferResponse(
            response_id=request.id or request_id_var.get() or new_request_id(),
            model_name=self.name,
            model_version=self.version,
            infer_outputs=[output],
            use_binary_outputs=binary,
            requested_outputs=request.request_outputs,  # per-output "binary_data" (REST)
        )

    async def _score(self, rows: np.ndarray) -> np.ndarray:
        assert self.session is not None
        if self._executor is None:  # created in the serving process, on first use
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="berth-ort")
            if self.settings.batching:
                self._batcher = Batcher(
                    self.session.run,
                    self._executor,
                    self.settings.max_batch_rows,
                    self.settings.max_batch_wait_ms / 1000,
                    self.settings.inline_max_rows,
                )
        if self._batcher is not None:
            return await self._batcher.submit(rows)
        metrics.BATCH_ROWS.observe(len(rows))
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self.session.run, rows)
