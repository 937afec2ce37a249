"""Hostile HTTP clients against a running transformer: header size and count, slow headers,
oversized bodies from clients that send everything before reading.

One stack for the module (redis-server, predictor, transformer, loopback) with a 2 s
header-read timeout (``BERTH_TRANSFORMER_HEADER_TIMEOUT_S``).
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from berth.loadtest import instances
from tests.support.serving import ServingStack

pytestmark = [pytest.mark.integration]

HEADER_TIMEOUT_S = 2.0
MAX_HEADER_BYTES = 32 * 1024  # the default (BERTH_*_MAX_HEADER_BYTES)
LOG = print


@pytest.fixture(scope="module")
def stack(serving_stack: Any) -> Iterator[ServingStack]:
    with serving_stack(
        "hostile-http",
        transformer_env={"BERTH_TRANSFORMER_HEADER_TIMEOUT_S": str(HEADER_TIMEOUT_S)},
    ) as s:
        yield s


def _address(stack: ServingStack) -> tuple[str, int]:
    return "127.0.0.1", stack.transformer_ports[0]


def _get(stack: ServingStack, headers: list[tuple[str, str]]) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(*_address(stack), timeout=20)
    try:
        conn.putrequest("GET", "/v2/health/ready")
        for name, value in headers:
            conn.putheader(name, value)
        conn.endheaders()
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_ordinary_headers_pass(stack: ServingStack) -> None:
    status, _ = _get(stack, [(f"x-h{i}", "v" * 100) for i in range(50)])
    assert status == 200


@pytest.mark.parametrize(
    "headers",
    [
        [(f"x-h{i}", "v") for i in range(10_000)],
        [("x-big", "v" * 1_000_000)],
        [("x-big", "v" * (MAX_HEADER_BYTES + 1))],
    ],
    ids=["10k-headers", "1MB-header", "one-byte-over"],
)
def test_too_many_or_too_large_headers_are_431(
    stack: ServingStack, headers: list[tuple[str, str]]
) -> None:
    status, body = _get(stack, headers)
    assert status == 431, body
    assert _get(stack, [])[0] == 200  # the server is fine


def test_unfinished_huge_headers_do_not_grow_memory(stack: ServingStack) -> None:
    pid = stack.transformer.proc.pid  # type: ignore[union-attr]
    before = _rss_mb(pid)
    answers: list[bytes] = []

    def send() -> None:
        with socket.create_connection(_address(stack), timeout=10) as sock:
            sock.sendall(b"GET /v2/health/ready HTTP/1.1\r\nHost: x\r\nX-Big: ")
            chunk = b"v" * 65536
            try:
                for _ in range(64 * 16):  # 64 MB, never finished
                    sock.sendall(chunk)
            except OSError:
                pass
            try:
                answers.append(sock.recv(200))
            except OSError:
                answers.append(b"")

    threads = [threading.Thread(target=send) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    after = _rss_mb(pid)
    LOG(f"8 x 64 MB unfinished headers: transformer RSS {before:.0f} -> {after:.0f} MB")
    assert after - before < 64, (before, after)
    assert any(a.startswith(b"HTTP/1.1 431") for a in answers), answers


def test_slow_headers_are_closed_after_the_header_timeout(stack: ServingStack) -> None:
    """A slowloris client (a byte every 0.5 s, never finishing its headers) is answered 408
    and closed about HEADER_TIMEOUT_S after it connected; other clients are served."""
    closed: list[float] = []
    started = time.monotonic()

    def slow() -> None:
        with socket.create_connection(_address(stack), timeout=HEADER_TIMEOUT_S * 5) as sock:
            sock.sendall(b"GET /v2/health/ready HTTP/1.1\r\n")
            try:
                for _ in range(40):
                    sock.sendall(b"X")
                    time.sleep(0.5)
                    sock.setblocking(False)
                    try:
                        if sock.recv(100) is not None:
                            break
                    except BlockingIOError:
                        pass
                    finally:
                        sock.setblocking(True)
            except OSError:
                pass
            closed.append(time.monotonic() - started)

    threads = [threading.Thread(target=slow) for _ in range(50)]
    for thread in threads:
        thread.start()
    time.sleep(0.5)
    assert _get(stack, [])[0] == 200  # served while the slow ones hang
    for thread in threads:
        thread.join(30)
    LOG(f"50 slowloris connections closed after {min(closed):.2f}-{max(closed):.2f} s")
    assert len(closed) == 50
    assert min(closed) > HEADER_TIMEOUT_S - 0.1 and max(closed) < HEADER_TIMEOUT_S + 3.0


def test_a_20mb_body_is_a_413_through_http_client_and_urllib(stack: ServingStack) -> None:
    body = json.dumps({**instances(1), "pad": "x" * 20_000_000}).encode()
    path = "/v1/models/driver-ranking:predict"
    for connection in ("keep-alive", "close"):
        conn = http.client.HTTPConnection(*_address(stack), timeout=30)
        try:  # http.client sends the whole body before it reads the answer
            conn.request(
                "POST",
                path,
                body,
                {"Content-Type": "application/json", "Connection": connection},
            )
            response = conn.getresponse()
            assert response.status == 413, response.read()
            assert b"BERTH_TRANSFORMER_MAX_REQUEST_BYTES" in response.read()
        finally:
            conn.close()
    request = urllib.request.Request(  # urllib sends "Connection: close"
        f"{stack.url}{path}", data=body, headers={"Content-Type": "application/json"}
    )
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(request, timeout=30)
    assert err.value.code == 413
