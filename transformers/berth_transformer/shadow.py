"""The shadow predictor: a copy of each answered request, fire and forget.

``submit`` never blocks, never raises: the copy goes into a bounded queue (full: dropped and
counted in ``berth_transformer_shadow_dropped_total``). Background workers send each copy to
the shadow predictor, observe ``|primary - shadow|`` per row in
``berth_transformer_shadow_delta`` and log one line with the request id; any failure counts in
``berth_transformer_shadow_errors_total`` and nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

import numpy as np

from berth.observability import get_logger
from berth_transformer import metrics
from berth_transformer.predictor_client import PredictorClient

log = get_logger(__name__)


@dataclass(frozen=True)
class ShadowCopy:
    features: np.ndarray
    primary_scores: np.ndarray
    request_id: str
    primary_version: str


class Shadow:
    """A bounded queue in front of the shadow predictor, drained by ``workers`` tasks."""

    def __init__(self, client: PredictorClient, queue_size: int = 256, workers: int = 2) -> None:
        self.client, self.queue_size, self.workers = client, queue_size, workers
        self.version = ""
        self._queue: asyncio.Queue[ShadowCopy] | None = None
        self._tasks: list[asyncio.Task[None]] = []

    def submit(self, copy: ShadowCopy) -> bool:
        """Queue ``copy`` for the shadow; False when dropped. Never raises."""
        try:
            if self._queue is None:
                self._start()
            assert self._queue is not None
            self._queue.put_nowait(copy)
            return True
        except asyncio.QueueFull:
            metrics.SHADOW_DROPPED.inc()
            return False
        except Exception:  # no running loop, or anything else: the primary must not notice
            metrics.SHADOW_DROPPED.inc()
            log.exception("shadow submit failed", request_id=copy.request_id)
            return False

    def _start(self) -> None:
        """Queue and workers in the running (serving) loop, on first use."""
        loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue(self.queue_size)
        self._tasks = [loop.create_task(self._work()) for _ in range(self.workers)]

    async def _work(self) -> None:
        assert self._queue is not None
        while True:
            copy = await self._queue.get()
            try:
                await self.compare(copy)
            finally:
                self._queue.task_done()

    async def compare(self, copy: ShadowCopy) -> np.ndarray | None:
        """One shadow call and its deltas; None (and counted) on any failure."""
        try:
            prediction = await self.client.infer(copy.features, copy.request_id)
            delta = np.abs(
                prediction.scores.astype(np.float64) - copy.primary_scores.astype(np.float64)
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            metrics.SHADOW_ERRORS.inc()
            log.info(
                "shadow failed",
                request_id=copy.request_id,
                error=getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}",
            )
            return None
        for value in delta.tolist():
            metrics.SHADOW_DELTA.observe(value)
        log.info(
            "shadow compared",
            request_id=copy.request_id,
            rows=len(delta),
            max_delta=round(float(delta.max(initial=0.0)), 6),
            mean_delta=round(float(delta.mean()) if len(delta) else 0.0, 6),
            primary_version=copy.primary_version,
            shadow_version=prediction.model_version or self.version,
        )
        return delta

    async def drain(self, timeout_s: float = 5.0) -> None:
        """Wait (bounded) for queued copies; for tests and shutdown."""
        if self._queue is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._queue.join(), timeout_s)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks, self._queue = [], None
        await self.client.close()
