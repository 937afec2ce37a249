"""The benchmark harness runs end to end and writes sane output (never how fast anything is).

``python -m benchmarks compare --smoke`` starts every process it needs (Redis, Berth, the
baseline, a predictor without batching, the load generator; not the peers), runs
each part for about a second and writes ``results.json``, ``report.md`` and ``latency.png``.
The open-loop generator is also checked against a server that stalls: the requests that queued
behind the stall must carry it in their latency (no coordinated omission).
"""

from __future__ import annotations

import asyncio
import json
import math
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from berth.stack import RedisServer
from tests.support.servers import loopback_app

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PROJECT = Path(__file__).resolve().parents[2]
REQUIRED = (
    "e2e.berth.max_rps_p99_10ms",
    "e2e.baseline.max_rps_p99_10ms",
    "features.berth_p50_ms",
    "features.feast_sdk_p50_ms",
    "features.redis_floor_p50_ms",
    "features.berth_cluster_p50_ms",
    "features.redis_cluster_floor_p50_ms",
    "features.berth_cluster_over_floor",
    "predictor.int8_rows_per_s_b64",
    "predictor.fp32_rows_per_s_b64",
)


def _dig(results: dict[str, Any], dotted: str) -> Any:
    value: Any = results
    for part in dotted.split("."):
        value = value[part]
    return value


@pytest.fixture
def artifact(request: pytest.FixtureRequest) -> Path:
    """The project's artifact when built (`berth build`), else the tests' small one."""
    shipped = PROJECT / "artifacts" / "driver-ranking"
    if (shipped / "metadata.json").exists():
        return shipped
    built: tuple[Path, Path] = request.getfixturevalue("built")
    return built[1]


def test_compare_smoke_writes_sane_results(tmp_path: Path, artifact: Path) -> None:
    if not RedisServer.available():
        pytest.skip("redis-server binary not found (apt-get install redis-server)")
    out = tmp_path / "bench"
    proc = subprocess.run(
        [
            sys.executable,
            *("-m", "benchmarks", "compare", "--smoke", "--no-profile"),
            *("--out", str(out), "--artifact", str(artifact)),
        ],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    results = json.loads((out / "results.json").read_text())

    for key in REQUIRED:
        value = _dig(results, key)
        assert isinstance(value, int | float) and math.isfinite(value), (key, value)
        # A max rate may be 0 (no offered rate held the bound in a 1 s point); the rest is > 0.
        assert value >= 0 if key.startswith("e2e.") else value > 0, (key, value)
    for stack in ("berth", "baseline"):
        points = results["e2e"][stack]["sweep"]["points"]
        assert points, stack
        for point in points:
            assert point["achieved_rps"] > 0 and point["latency_ms"]["p50"] > 0, (stack, point)
            assert point["latency_ms"]["p50"] <= point["latency_ms"]["p99"]
            assert point["cpu_ms_per_request"]["transformer"] > 0
    assert results["features"]["detail"]["berth_matches_feast_sdk"] is True
    assert results["features"]["detail"]["cluster"]["berth_cluster_matches_feast_sdk"] is True
    assert results["machine"]["cores_logical"] >= 1 and results["machine"]["cpu_model"]
    names = [t["name"] for t in results["targets"]]
    assert any("Berth / baseline" in n for n in names), names
    assert any("servers CPU ms per request" in n for n in names), names
    assert any("cluster" in n.lower() for n in names), names
    assert not any("MLServer" in n or "tuned peer" in n for n in names), names
    assert "compare --smoke" in results["command"]
    # --smoke skips the peers (their venvs, sweeps and chains) to stay within its time.
    assert "predictor_peers" not in results and "tuned_peer" not in results["e2e"]
    assert results["e2e"]["berth"]["servers_cpu_ms_per_request"] > 0
    assert all(isinstance(t["met"], bool) for t in results["targets"])
    assert (out / "report.md").read_text().startswith("# Berth benchmark report")
    assert (out / "latency.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_open_loop_counts_the_wait_behind_a_stalled_server() -> None:
    """A server that blocks its loop for 300 ms once: requests due meanwhile still leave on
    schedule (late), and their latency from the intended send time includes the stall."""
    from aiohttp import web

    from benchmarks.loadgen import LoadSpec, run_point

    stalled: list[bool] = []

    async def predict(request: web.Request) -> web.Response:
        await request.read()
        if not stalled and request.app["seen"] >= 20:
            stalled.append(True)
            time.sleep(0.3)  # noqa: ASYNC251 -- on purpose: a handler that blocks its loop
        request.app["seen"] += 1
        return web.json_response({"predictions": [0.5]})

    async def scenario() -> dict[str, Any]:
        app = web.Application()
        app["seen"] = 0
        app.router.add_post("/v1/models/driver-ranking:predict", predict)
        async with loopback_app(app) as url:
            result = await run_point(LoadSpec("v1", url, rate=100, duration_s=1.0, warmup_s=0.0))
        return result.__dict__

    result = asyncio.run(scenario())
    assert stalled
    assert result["sent"] == 100 and result["ok"] == 100, result["errors"]
    # Requests intended during the stall waited for it: about 0.3 s for the first of them.
    assert result["latency_ms"]["max"] >= 250
    assert result["latency_ms"]["p50"] < result["latency_ms"]["max"]
