"""The shared gathering loop (berth.serving.gather) on a real asyncio queue."""

from __future__ import annotations

import asyncio

from berth.serving.gather import Gatherer


def _queue(*sizes: int) -> asyncio.Queue[int]:
    queue: asyncio.Queue[int] = asyncio.Queue()
    for size in sizes:
        queue.put_nowait(size)
    return queue


def test_takes_what_is_queued_up_to_the_bound_and_spills_the_rest() -> None:
    async def run() -> list[list[int]]:
        gather = Gatherer(_queue(3, 4, 2, 5), lambda n: n, max_size=8, linger_s=0.0)
        return [await gather.next(), await gather.next()]

    assert asyncio.run(run()) == [[3, 4], [2, 5]]


def test_without_spill_the_crossing_item_joins_and_ends_the_batch() -> None:
    async def run() -> list[list[int]]:
        gather = Gatherer(_queue(3, 4, 2, 5), lambda n: n, 8, 0.0, spill=False)
        return [await gather.next(), await gather.next()]

    assert asyncio.run(run()) == [[3, 4, 2], [5]]


def test_a_first_item_over_the_bound_goes_alone() -> None:
    async def run() -> list[list[int]]:
        gather = Gatherer(_queue(20, 1), lambda n: n, 8, 0.0)
        return [await gather.next(), await gather.next()]

    assert asyncio.run(run()) == [[20], [1]]


def test_lingers_for_items_that_arrive_after_the_first() -> None:
    async def run() -> list[int]:
        queue = _queue(1)
        gather = Gatherer(queue, lambda n: n, 3, linger_s=30.0)

        async def later() -> None:
            await asyncio.sleep(0)
            queue.put_nowait(1)
            await asyncio.sleep(0)
            queue.put_nowait(1)  # the batch is full at 3: no waiting out the linger

        feeder = asyncio.create_task(later())
        batch = await gather.next()
        await feeder
        return batch

    assert asyncio.run(run()) == [1, 1, 1]


def test_zero_linger_does_not_wait_for_more() -> None:
    async def run() -> tuple[list[int], int]:
        queue = _queue(1)
        gather = Gatherer(queue, lambda n: n, 8, linger_s=0.0)
        batch = await gather.next()
        queue.put_nowait(2)
        return batch, queue.qsize()

    assert asyncio.run(run()) == ([1], 1)
