"""The shadow predictor: a copy of each answered request, fire and forget.

``submit`` never blocks, never raises: the copy goes into a bounded queue (full: dropped and
counted in ``berth_transformer_shadow_dropped_total``). Background workers send the copies to
the shadow predictor, observe ``|primary - shadow|`` per row in
``berth_transformer_shadow_delta`` and log one line per call listing each copy's request id,
rows and max/mean delta; any failure counts in ``berth_transformer_shadow_errors_total`` (per
copy) and nothing else.

A worker takes the first queued copy, then gathers more for up to ``linger_s`` (or until
``max_rows`` rows; :class:`berth.serving.gather.Gatherer`, the predictor batcher's loop) and
sends them as one call; the predictor scores rows independently, so
each copy's scores are its own slice. The shadow's latency does not matter, its CPU on the
transformer's event loop does: one call per ``linger_s`` instead of one per request makes
mirroring cost the primary path a fraction of a request's work.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

import numpy as np

from berth.observability import get_logger
from berth.serving.gather import Gatherer
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

    def __init__(
        self,
        client: PredictorClient,
        queue_size: int = 256,
        workers: int = 2,
        max_rows: int = 256,
        linger_s: float = 0.0,
    ) -> None:
        self.client, self.queue_size, self.workers = client, queue_size, workers
        self.max_rows = max_rows  # a call stops taking copies at this many rows
        self.linger_s = linger_s  # how long a call waits for more copies
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
        # spill=False: the copy that takes a call over max_rows still joins it
        gather = Gatherer(
            self._queue, lambda c: len(c.features), self.max_rows, self.linger_s, spill=False
        )
        while True:
            copies = await gather.next()
            try:
                await self.compare(copies)
            finally:
                for _ in copies:
                    self._queue.task_done()

    async def compare(self, copies: list[ShadowCopy]) -> list[np.ndarray] | None:
        """One shadow call for ``copies`` and each copy's deltas; None (and each copy counted
        as an error) on any failure."""
        first = copies[0]
        call_id = first.request_id if len(copies) == 1 else f"{first.request_id}+{len(copies) - 1}"
        try:
            features = (
                np.concatenate([c.features for c in copies]) if len(copies) > 1 else first.features
            )
            prediction = await self.client.infer(features, call_id)
            scores = prediction.scores.astype(np.float64)
            if len(scores) != len(features):
                raise ValueError(f"shadow returned {len(scores)} scores for {len(features)} rows")
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            metrics.SHADOW_ERRORS.inc(len(copies))
            log.info(
                "shadow failed",
                request_id=first.request_id,
                copies=len(copies),
                error=getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}",
            )
            return None
        shadow_version = prediction.model_version or self.version
        deltas, offset, per_request = [], 0, []
        for copy in copies:
            n = len(copy.features)
            delta = np.abs(scores[offset : offset + n] - copy.primary_scores.astype(np.float64))
            offset += n
            for value in delta.tolist():
                metrics.SHADOW_DELTA.observe(value)
            per_request.append(
                {
                    "request_id": copy.request_id,
                    "rows": n,
                    "max_delta": round(float(delta.max(initial=0.0)), 6),
                    "mean_delta": round(float(delta.mean()) if n else 0.0, 6),
                    "primary_version": copy.primary_version,
                }
            )
            deltas.append(delta)
            await asyncio.sleep(0)  # a call's bookkeeping never holds the loop for long
        # One line per call (a line costs ~25 us; one per copy made bursts the primary felt).
        log.info(
            "shadow compared",
            request_id=first.request_id,
            shadow_call=call_id,
            shadow_version=shadow_version,
            requests=per_request,
        )
        return deltas

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
