"""``Gatherer``: take what a queue holds, as one batch, bounded in size and in waiting.

The predictor's batcher (one ONNX Runtime run per batch) and the transformer's shadow (one
shadow call per batch of copies) gather the same way: wait for a first item, then take every
item already queued, and, while the batch is under ``max_size``, wait for more until ``linger_s``
after the first (0: no wait, so an idle server sends at once and a busy one forms bigger batches
by itself).

An item that would take the batch over ``max_size``:

- ``spill=True`` (the batcher): is kept back and opens the next batch, so a batch holds at most
  ``max_size`` (unless its first item alone is bigger);
- ``spill=False`` (the shadow): joins the batch, which then stops.

With ``spill=True`` the gatherer keeps the spilled item: one gatherer per consumer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Gatherer(Generic[T]):
    def __init__(
        self,
        queue: asyncio.Queue[T],
        size: Callable[[T], int],
        max_size: int,
        linger_s: float,
        *,
        spill: bool = True,
    ) -> None:
        self.queue = queue
        self.size = size
        self.max_size = max_size
        self.linger_s = linger_s
        self.spill = spill
        self._carry: T | None = None

    async def next(self) -> list[T]:
        """The next batch (never empty)."""
        queue = self.queue
        first = self._carry if self._carry is not None else await queue.get()
        self._carry = None
        items, size = [first], self.size(first)
        deadline = time.perf_counter() + self.linger_s
        while size < self.max_size:
            try:
                item = queue.get_nowait()
            except asyncio.QueueEmpty:
                left = deadline - time.perf_counter()
                if left <= 0:
                    break
                try:
                    async with asyncio.timeout(left):
                        item = await queue.get()
                except TimeoutError:
                    break
            n = self.size(item)
            if self.spill and size + n > self.max_size:
                self._carry = item
                break
            items.append(item)
            size += n
        return items
