"""Adaptive batching alone: a fake run function on a real worker thread."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from berth_predictor.batcher import Batcher


class FakeRun:
    """Scores a row as its first column times 2; records each batch's size and thread."""

    def __init__(self, delay_s: float = 0.0, fail_on: float | None = None) -> None:
        self.sizes: list[int] = []
        self.threads: set[str] = set()
        self.delay_s = delay_s
        self.fail_on = fail_on

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        self.sizes.append(len(batch))
        self.threads.add(threading.current_thread().name)
        time.sleep(self.delay_s)
        if self.fail_on is not None and self.fail_on in batch[:, 0]:
            raise RuntimeError("boom")
        return (batch[:, 0] * 2).astype(np.float32)


@pytest.fixture
def executor() -> Iterator[ThreadPoolExecutor]:
    pool = ThreadPoolExecutor(1, thread_name_prefix="ort")
    yield pool
    pool.shutdown(wait=True)


def _rows(start: int, n: int = 1) -> np.ndarray:
    return np.tile(np.arange(start, start + n, dtype=np.float32)[:, None], (1, 3))


def test_concurrent_callers_share_runs_and_get_their_own_rows(
    executor: ThreadPoolExecutor,
) -> None:
    run = FakeRun(delay_s=0.005)

    async def main() -> list[np.ndarray]:
        batcher = Batcher(run, executor, max_rows=16, max_wait_s=0.002)
        return await asyncio.gather(*(batcher.submit(_rows(10 * i, 1 + i % 3)) for i in range(40)))

    results = asyncio.run(main())
    for i, scores in enumerate(results):
        np.testing.assert_array_equal(scores, _rows(10 * i, 1 + i % 3)[:, 0] * 2)
    assert sum(run.sizes) == sum(1 + i % 3 for i in range(40))
    assert max(run.sizes) > 1 and max(run.sizes) <= 16
    assert run.threads == {"ort_0"}  # off the event loop, one run at a time


def test_a_request_is_never_split_and_the_next_one_waits_for_the_next_run(
    executor: ThreadPoolExecutor,
) -> None:
    run = FakeRun(delay_s=0.01)

    async def main() -> None:
        batcher = Batcher(run, executor, max_rows=4, max_wait_s=0.05)
        await asyncio.gather(*(batcher.submit(_rows(i, 3)) for i in range(4)))

    asyncio.run(main())
    assert run.sizes == [3, 3, 3, 3]


def test_a_failed_run_fails_its_callers_only(executor: ThreadPoolExecutor) -> None:
    run = FakeRun(fail_on=999.0)

    async def main() -> tuple[list[object], np.ndarray]:
        batcher = Batcher(run, executor, max_rows=8, max_wait_s=0.01)
        first = await asyncio.gather(
            batcher.submit(_rows(999)), batcher.submit(_rows(1)), return_exceptions=True
        )
        return first, await batcher.submit(_rows(5))

    first, later = asyncio.run(main())
    assert all(isinstance(r, RuntimeError) for r in first)
    np.testing.assert_array_equal(later, [10.0])


def test_a_cancelled_caller_does_not_disturb_the_others(executor: ThreadPoolExecutor) -> None:
    run = FakeRun(delay_s=0.02)

    async def main() -> np.ndarray:
        batcher = Batcher(run, executor, max_rows=8, max_wait_s=0.01)
        doomed = asyncio.create_task(batcher.submit(_rows(1)))
        kept = asyncio.create_task(batcher.submit(_rows(2)))
        await asyncio.sleep(0)
        doomed.cancel()
        return await kept

    np.testing.assert_array_equal(asyncio.run(main()), [4.0])


def test_zero_wait_takes_what_is_queued(executor: ThreadPoolExecutor) -> None:
    run = FakeRun()

    async def main() -> float:
        batcher = Batcher(run, executor, max_rows=8, max_wait_s=0.0)
        started = time.perf_counter()
        await batcher.submit(_rows(1))
        return time.perf_counter() - started

    assert asyncio.run(main()) < 0.5
    assert run.sizes == [1]
