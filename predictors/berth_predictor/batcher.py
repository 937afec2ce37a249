"""Adaptive batching: concurrent requests share one ONNX Runtime run.

While a run is in progress, new requests queue; the next run takes everything queued (up to
``max_rows``), waiting at most ``max_wait_s`` for more once it has some (0, the default: no
wait, so an idle predictor answers at once and a busy one forms bigger batches by itself).
A batch of at most ``inline_rows`` rows runs on the event loop: for a small model such a run
(tens of microseconds) costs less than the two thread hand-offs around it. Larger batches run
on one worker thread. Every caller gets exactly its own rows back, in order.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field

import numpy as np

from berth.serving.gather import Gatherer
from berth_predictor import metrics


@dataclass
class _Job:
    rows: np.ndarray
    future: asyncio.Future[np.ndarray]
    queued_at: float = field(default_factory=time.perf_counter)


def _rows(job: _Job) -> int:
    return len(job.rows)


class Batcher:
    def __init__(
        self,
        run: Callable[[np.ndarray], np.ndarray],
        executor: Executor,
        max_rows: int,
        max_wait_s: float,
        inline_rows: int = 0,
    ) -> None:
        self._run = run
        self._executor = executor
        self._max_rows = max_rows
        self._max_wait_s = max_wait_s
        self._inline_rows = inline_rows
        self._queue: asyncio.Queue[_Job] | None = None
        self._gather: Gatherer[_Job] | None = None
        self._task: asyncio.Task[None] | None = None

    async def submit(self, rows: np.ndarray) -> np.ndarray:
        if self._queue is None:
            self._queue = asyncio.Queue()
            self._gather = Gatherer(self._queue, _rows, self._max_rows, self._max_wait_s)
            self._task = asyncio.create_task(self._loop(), name="berth-batcher")
        job = _Job(rows, asyncio.get_running_loop().create_future())
        self._queue.put_nowait(job)
        return await job.future

    async def _loop(self) -> None:
        assert self._gather is not None
        loop = asyncio.get_running_loop()
        while True:
            jobs = await self._gather.next()
            jobs = [j for j in jobs if not j.future.cancelled()]
            if not jobs:
                continue
            started = time.perf_counter()
            for job in jobs:
                metrics.QUEUE_SECONDS.observe(started - job.queued_at)
            batch = jobs[0].rows if len(jobs) == 1 else np.concatenate([j.rows for j in jobs])
            try:
                if len(batch) <= self._inline_rows:
                    scores = self._run(batch)
                else:
                    scores = await loop.run_in_executor(self._executor, self._run, batch)
            except Exception as exc:  # every caller of the batch learns of the failure
                for job in jobs:
                    if not job.future.done():
                        job.future.set_exception(exc)
                continue
            metrics.BATCH_ROWS.observe(len(batch))
            offset = 0
            for job in jobs:
                n = len(job.rows)
                if not job.future.done():
                    job.future.set_result(scores[offset : offset + n])
                offset += n
