"""``python -m benchmarks.floor --repo R --model M --port P``: the physical floor of a request.

A bare ASGI callable on uvicorn (uvloop, httptools, no framework, no access log) that, per
POST, reads the body, sends one pipelined Redis read of the HMGETs Feast's layout needs for one
benchmark request (keys precomputed from the same request pool; replies left as bytes), runs
the int8 ``model.onnx`` once on a 10-row matrix (one intra-op thread) and answers a fixed JSON
body. No parsing, no decoding, no validation, no metrics: what any server in Python must at
least spend on the wire, Redis and the model. ``GET /ready`` answers 200 once loaded.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import numpy as np

READY = b"/ready"
ANSWER = b'{"predictions":[0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.5]}'
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(ANSWER)).encode())]


async def read_request(scope: dict[str, Any], receive: Any, send: Any) -> bool:
    """Answer ASGI's lifespan (False), or read an HTTP request's body to its end (True)."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return False
    more = True
    while more:
        more = (await receive()).get("more_body", False)
    return True


def build_app(repo: Path, model: Path, candidates: int, redis_url: str) -> Any:
    import onnxruntime as ort
    import redis.asyncio

    from benchmarks import payloads
    from benchmarks.features_bench import SERVICE, feast_commands
    from berth.featurerepo import open_store

    store = open_store(repo)
    service = store.get_feature_service(SERVICE)
    pool = payloads.ranking_requests(256, candidates)
    commands = [feast_commands(store, service, rows) for rows in pool]
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    feed = {
        session.get_inputs()[0].name: np.random.default_rng(0)
        .random((candidates, session.get_inputs()[0].shape[1]))
        .astype(np.float32)
    }
    client = redis.asyncio.Redis.from_url(redis_url)
    count = 0

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        nonlocal count
        if not await read_request(scope, receive, send):
            return
        if scope["method"] == "POST":
            count += 1
            async with client.pipeline(transaction=False) as pipe:
                for key, fields in commands[count % len(commands)]:
                    pipe.hmget(key, fields)
                await pipe.execute()
            session.run(None, feed)
        await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
        await send({"type": "http.response.body", "body": ANSWER})

    return app


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(prog="python -m benchmarks.floor")
    parser.add_argument("--repo", required=True, help="Feast repo (applied, materialized)")
    parser.add_argument("--model", required=True, help="model.onnx")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--candidates", type=int, default=10)
    args = parser.parse_args()
    conn = os.environ.get("REDIS_CONNECTION_STRING", "127.0.0.1:6379").split(",")[0]
    app = build_app(Path(args.repo), Path(args.model), args.candidates, f"redis://{conn}")
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=args.port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
