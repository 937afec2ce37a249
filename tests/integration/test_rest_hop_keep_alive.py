"""The transformer's REST hop against a real predictor that closes idle keep-alive connections
(uvicorn's ``--timeout-keep-alive``, 1 s here): the next call goes out on a new connection and
succeeds, without an error and without a retry."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import REGISTRY

from berth.stack import Ports, Stack, predictor_process
from berth_transformer.predictor_client import Link
from berth_transformer.predictor_rest import RestPredictorClient

pytestmark = pytest.mark.integration
NAME = "driver-ranking"
RETRIES = "berth_transformer_predictor_retries_total"


def test_a_connection_the_predictor_closed_while_idle_is_replaced(
    built: tuple[Path, Path], processes: Stack
) -> None:
    ports = Ports.free()
    server = predictor_process(NAME, built[1], ports)
    server.args += ["--timeout-keep-alive", "1"]
    processes.start("predictor", server).wait_ready(120)

    async def main() -> tuple[int, int, bool]:
        client = RestPredictorClient(ports.url, NAME, Link(timeout_s=5.0))
        try:
            width = (await client.metadata())["inputs"][0]["shape"][1]
            rows = np.random.default_rng(1).random((4, width)).astype(np.float32)
            first = await client.infer(rows, "keep-alive-1")
            (idle,) = client._http._idle
            await asyncio.sleep(2.0)  # past the predictor's keep-alive timeout
            closed = not idle.open
            second = await client.infer(rows, "keep-alive-2")
            assert second.scores.tobytes() == first.scores.tobytes()
            return len(first.scores), len(second.scores), closed
        finally:
            await client.close()

    before = REGISTRY.get_sample_value(RETRIES) or 0.0
    first, second, closed = asyncio.run(main())
    assert (first, second) == (4, 4)
    assert closed, "the predictor kept the idle connection open: the test proves nothing"
    assert (REGISTRY.get_sample_value(RETRIES) or 0.0) == before
