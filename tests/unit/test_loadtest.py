"""The reliability tests' sender keeps its own pauses out of what it measures."""

from __future__ import annotations

import asyncio
import gc

from aiohttp import web

from berth.loadtest import open_loop
from berth.testing import loopback_app


def test_open_loop_keeps_the_heap_out_of_full_collections_and_gives_it_back() -> None:
    """A full collection of a test process's heap pauses the sender ~190 ms, and the backlog
    then leaves as one burst the server sheds: during a run the heap is frozen, after it not."""
    during: list[int] = []
    before = gc.get_freeze_count()

    async def predict(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"predictions": [0.5]})

    async def scenario() -> int:
        app = web.Application()
        app.router.add_post("/v1/models/m:predict", predict)
        async with loopback_app(app) as url:
            run = await open_loop(
                f"{url}/v1/models/m:predict",
                {"instances": [1]},
                rate=50,
                seconds=0.4,
                events={0.2: lambda: during.append(gc.get_freeze_count())},
            )
        return run.count(200)

    answered = asyncio.run(scenario())
    assert answered == 20
    assert during and during[0] > before
    assert gc.get_freeze_count() == before
