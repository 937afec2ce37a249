"""The reliability tests' sender keeps its own pauses out of what it measures."""

from __future__ import annotations

import asyncio
import gc

import pytest
from aiohttp import web

from berth.loadtest import open_loop
from tests.support.servers import loopback_app


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


# Documentation-only addresses (RFC 5737 / RFC 3849): the refusal must come before any traffic.
REMOTE_TARGETS = ("http://192.0.2.10:8080", "198.51.100.7:8081", "http://[2001:db8::1]:8080")


@pytest.mark.parametrize("command", ["load", "sweep"])
@pytest.mark.parametrize("target", REMOTE_TARGETS)
def test_benchmark_load_refuses_a_remote_target_without_allow_remote(
    command: str, target: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from benchmarks.__main__ import main

    with pytest.raises(SystemExit) as exc:
        main([command, "--target", target, "--protocol", "v1", "--duration", "0.1"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"python -m benchmarks {command}: refusing to send load to" in err
    assert "--allow-remote" in err and "Traceback" not in err


def test_load_spec_refusal_names_the_flag_and_loopback_range_is_allowed() -> None:
    from benchmarks.loadgen import LoadSpec, RemoteTargetRefused

    with pytest.raises(RemoteTargetRefused, match="--allow-remote"):
        LoadSpec("v1", "http://192.0.2.10:8080", rate=10, duration_s=1).check()
    for target in ("http://127.0.0.1:1", "http://127.0.0.2:1", "http://localhost:1", "[::1]:1"):
        LoadSpec("v1", target, rate=10, duration_s=1).check()
    LoadSpec("v1", "http://192.0.2.10:8080", rate=10, duration_s=1, allow_remote=True).check()


def test_benchmark_load_runs_against_a_loopback_target(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`python -m benchmarks load` on a loopback server: every request answered, JSON out."""
    import json
    import threading

    from benchmarks.__main__ import main

    async def predict(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"predictions": [0.5]})

    ready = threading.Event()
    stop: list[asyncio.Event] = []
    urls: list[str] = []

    async def serve() -> None:
        app = web.Application()
        app.router.add_post("/v1/models/driver-ranking:predict", predict)
        async with loopback_app(app) as url:
            urls.append(url)
            stop.append(asyncio.Event())
            ready.set()
            await stop[0].wait()

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        code = main(["load", "--target", urls[0], "--rate", "40", "--duration", "0.5"])
    finally:
        loop.call_soon_threadsafe(stop[0].set)
        thread.join(10)
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["sent"] == 20 and result["ok"] == 20, result["errors"]
