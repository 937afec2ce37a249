"""The transformer's REST predictor client sends a call once more, on a new connection, after
a 503 (a draining predictor): never on a pooled keep-alive one, which behind a Service may be
to the same draining replica. Against a real aiohttp server on loopback that answers the first
request 503 and keeps its connection open, recording the connection of each request; over TLS
too (the retry's connection verifies the predictor with the link's CA bundle)."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import numpy as np
import pytest
from aiohttp import web

from berth.errors import DependencyUnavailableError
from berth.stack import LOOPBACK, free_port
from berth_transformer.predictor_client import Link
from berth_transformer.predictor_rest import RestPredictorClient
from tests.support.tls import self_signed_tls

MODEL = "driver-ranking"


class Refusing:
    """503 (keep-alive) to the first ``refuse`` requests, scores after; ``connections`` holds
    the client address (one per TCP connection) of each request, in order."""

    def __init__(self, refuse: int) -> None:
        self.refuse = refuse
        self.connections: list[tuple[str, int]] = []

    async def infer(self, request: web.Request) -> web.Response:
        await request.read()
        assert request.transport is not None
        self.connections.append(request.transport.get_extra_info("peername"))
        if len(self.connections) <= self.refuse:
            return web.json_response({"error": "shutting down"}, status=503)
        return web.json_response(
            {"model_version": "v1", "outputs": [{"name": "score", "data": [0.5, 0.5, 0.5]}]}
        )


async def _infer_twice(server: Refusing, tls_dir: Path | None = None) -> list[object]:
    """Two calls in a row on one client (the second after the first's retry, if any), over
    TLS with a certificate made in ``tls_dir`` if given."""
    app = web.Application()
    app.router.add_post(f"/v2/models/{MODEL}/infer", server.infer)
    runner = web.AppRunner(app)
    await runner.setup()
    port, server_tls, link = free_port(), None, Link(timeout_s=2.0)
    if tls_dir is not None:
        files = self_signed_tls(tls_dir)
        server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server_tls.load_cert_chain(files.cert, files.key)
        link = Link(timeout_s=2.0, tls=True, ca_bundle=files.cert)
    await web.TCPSite(runner, LOOPBACK, port, ssl_context=server_tls).start()
    client = RestPredictorClient(f"{LOOPBACK}:{port}", MODEL, link)
    results: list[object] = []
    try:
        for _ in range(2):
            try:
                results.append(await client.infer(np.ones((3, 4), np.float32), "rid-1"))
            except DependencyUnavailableError as exc:
                results.append(exc)
    finally:
        await client.close()
        await runner.cleanup()
    return results


@pytest.mark.parametrize("tls", [False, True])
def test_a_503_is_sent_once_more_on_a_new_connection_the_pool_keeps_serving(
    tls: bool, tmp_path: Path
) -> None:
    server = Refusing(refuse=1)
    first, second = asyncio.run(_infer_twice(server, tmp_path if tls else None))
    assert not isinstance(first, Exception), first
    assert not isinstance(second, Exception), second
    refused_on, retried_on, next_on = server.connections
    assert retried_on != refused_on  # the retry did not reuse the refused keep-alive connection
    assert next_on == refused_on  # first attempts still use the pooled connection


def test_only_once() -> None:
    server = Refusing(refuse=2)
    first, second = asyncio.run(_infer_twice(server))
    assert isinstance(first, DependencyUnavailableError) and not isinstance(second, Exception)
    refused_on, retried_on, next_on = server.connections
    assert retried_on != refused_on and next_on == refused_on
