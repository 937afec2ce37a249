"""``python -m benchmarks interleave`` end to end against two real loopback HTTP servers (a
minimal keep-alive responder each, one process per stack)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from berth.stack import free_port

pytestmark = [pytest.mark.integration]

RESPONDER = r"""
import asyncio, re, sys
async def handle(reader, writer):
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = re.search(rb"(?i)content-length: *(\d+)", head)
            await reader.readexactly(int(length.group(1)) if length else 0)
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                         b"content-length: 19\r\n\r\n{\"predictions\": []}")
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()
async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", int(sys.argv[1]))
    await server.serve_forever()
asyncio.run(main())
"""


@pytest.fixture
def responders() -> Iterator[list[tuple[int, int]]]:
    procs, ports = [], [free_port(), free_port()]
    try:
        for port in ports:
            procs.append(subprocess.Popen([sys.executable, "-c", RESPONDER, str(port)]))
        time.sleep(1.0)
        yield [(port, proc.pid) for port, proc in zip(ports, procs, strict=True)]
    finally:
        for proc in procs:
            proc.kill()
            proc.wait(10)


def test_two_stacks_alternate_and_each_gets_its_figures(
    responders: list[tuple[int, int]], tmp_path: Path
) -> None:
    (a_port, a_pid), (b_port, b_pid) = responders
    done = subprocess.run(
        [
            *(sys.executable, "-m", "benchmarks", "interleave"),
            *("--stack", f"a=http://127.0.0.1:{a_port}", "--pid", f"a={a_pid}"),
            *("--stack", f"b=http://127.0.0.1:{b_port}", "--pid", f"b={b_pid}"),
            *("--rate", "40", "--duration", "0.5", "--warmup", "0.1", "--rounds", "3"),
            *("--out", str(tmp_path)),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result = json.loads(done.stdout)
    assert [p["stack"] for p in result["points"]] == ["a", "b", "b", "a", "a", "b"]
    for name in ("a", "b"):
        summary = result["summary"][name]
        assert summary["points"] == 3 and summary["errors"] == 0
        assert summary["cpu_ms_per_request"] >= 0 and summary["p99_ms"] > 0  # metered, timed
    assert json.loads((tmp_path / "interleave.json").read_text()) == result
    assert "| b |" in (tmp_path / "interleave.md").read_text()
