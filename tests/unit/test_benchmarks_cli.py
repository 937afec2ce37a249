"""The benchmark CLI's refusals and the pure logic of its peer and cache experiments."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from benchmarks import cache_bench, compare_summary, gpu_bench, peers, report
from benchmarks.loadgen import LoadSpec
from benchmarks.sweep import SweepConfig, sweep


def test_predictor_cuda_refuses_cleanly_without_a_gpu(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    if gpu_bench.gpu_present():
        pytest.skip("a GPU is here: the command would run, not refuse")
    from benchmarks.__main__ import main

    monkeypatch.setenv("BENCH_VENVS", str(tmp_path / "venvs"))
    code = main(["predictor", "--provider", "cuda", "--artifact", str(tmp_path)])
    assert code == 2
    err = capsys.readouterr().err
    assert "--provider cuda: no NVIDIA GPU here" in err and "nothing was installed" in err
    assert not (tmp_path / "venvs").exists()  # refused before making the venv


def test_lru_simulation_counts_row_and_whole_request_hits() -> None:
    a, b, c = b"a", b"b", b"c"
    run = cache_bench.simulate([[a, b], [a, b], [a, c], [b, c]], capacity=2)
    # [a b]: 2 misses; [a b]: 2 hits (whole request); [a c]: a hit, c miss evicts b;
    # [b c]: b miss (evicted), c hit.
    assert run["row_hit_rate"] == 4 / 8
    assert run["request_hit_rate"] == 1 / 4
    assert cache_bench.simulate([[a], [a]], capacity=0)["row_hit_rate"] == 0.0


def test_skewed_mix_repeats_some_requests_and_stays_in_range() -> None:
    traffic = cache_bench.skewed_requests(400, 5, (1001, 1100), (1, 50), seed=3)
    assert len(traffic) == 400
    distinct = {id(r) for r in traffic}
    assert 0 < len(distinct) < 400  # some customers came back with the same request
    for request in traffic:
        assert len(request) == 5 and len({r["customer_id"] for r in request}) == 1
        assert all(1 <= r["customer_id"] <= 50 for r in request)
        assert all(1001 <= r["driver_id"] <= 1100 for r in request)


def test_peer_ratios_are_berth_over_each_peer_and_none_when_missing() -> None:
    key = peers.rate_key(10.0)
    out = {
        "berth": {"settings": {}, "rest_v2": {key: 2000.0, "rows_1": {key: 3000.0}}},
        "mlserver": {"settings": {}, "rest_v2": {key: 1000.0, "rows_1": {key: 0.0}}},
        "triton": {"settings": {}, "unavailable": "no python3.12"},
    }
    ratios = peers.ratios(out, key)
    assert ratios["mlserver.rest_v2"] == 2.0
    assert ratios["mlserver.rest_v2.rows_1"] is None  # the peer held no rate: no ratio
    assert ratios["mlserver.grpc_v2"] is None and ratios["triton.rest_v2"] is None
    assert "berth.rest_v2" not in ratios


def test_v2_binary_body_decodes_to_the_same_rows_with_the_servers_codec() -> None:
    """The generator's binary-tensor body is what Berth's V2 decoder reads (and Triton's)."""
    import numpy as np

    from benchmarks import payloads
    from berth.serving.codec import decode_v2

    matrix = payloads.feature_rows(1, 3, width=4)[0]
    body, header_length = payloads.predictor_v2_binary_body(matrix)
    assert len(body) == header_length + 3 * 4 * 4
    request = decode_v2(body, str(header_length), "m")
    got = request.inputs[0].as_numpy()
    np.testing.assert_array_equal(got, np.asarray(matrix, dtype=np.float32))


def test_v2_binary_is_for_model_rows_only() -> None:
    from benchmarks.loadgen import LoadSpec

    with pytest.raises(ValueError, match="--payload features"):
        LoadSpec("v2-binary", "http://127.0.0.1:1", rate=1, duration_s=1).check()
    LoadSpec("v2-binary", "http://127.0.0.1:1", rate=1, duration_s=1, payload="features").check()


def test_a_peer_that_fails_to_start_is_reported_by_its_error_line() -> None:
    log = "server exited with 1:\nloading model\nAttributeError: no '_recursion_count'\nbye\n"
    assert peers._last_error(log) == "AttributeError: no '_recursion_count'"
    assert peers._last_error("starting\nkilled\n") == "killed"


def test_ports_never_hands_out_a_port_twice_in_a_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """A server slow to bind must not find its port given to a peer started after it."""
    from benchmarks import peer_run

    offered = iter([6, 5, 6, 5, 7])
    monkeypatch.setattr(peer_run, "free_port", lambda: next(offered))
    ports = peer_run.Ports({6})
    assert [ports(), ports()] == [5, 7]


class _Server:
    """A fake load worker: p99 stays at 2 ms up to ``limit`` rps, then 50 ms."""

    pid = 0

    def __init__(self, limit: float) -> None:
        self.limit = limit
        self.rates: list[float] = []

    def p99(self, rate: float) -> float:
        return 2.0 if rate <= self.limit else 50.0

    def run(self, spec: Any) -> dict[str, Any]:
        self.rates.append(spec.rate)
        p99 = self.p99(spec.rate)
        done = int(spec.rate * spec.duration_s)
        return {
            "spec": {"rate": spec.rate}, "latency_ms": {"p99": p99}, "errors": {}, "sent": done,
            "achieved_rps": spec.rate, "completed_total": done, "wall_s": spec.duration_s,
        }  # fmt: skip


class _Meter:
    pids: dict[str, int] = {}

    def snapshot(self) -> dict[str, float]:
        return {"machine": 0.0, "generator": 0.0}


class _SlowServer(_Server):
    """p99 12 ms from ``slow_from`` rps up to ``limit`` (a 10 ms bound fails there, 50 ms
    holds), 5 ms below ``slow_from``, 80 ms above ``limit``."""

    def __init__(self, limit: float, slow_from: float) -> None:
        super().__init__(limit)
        self.slow_from = slow_from

    def p99(self, rate: float) -> float:
        return 5.0 if rate < self.slow_from else 12.0 if rate <= self.limit else 80.0


def _sweep(
    limit: float, server: _Server | None = None, **cfg: Any
) -> tuple[dict[str, Any], _Server]:
    server = server or _Server(limit)
    spec = LoadSpec(protocol="v1", target="127.0.0.1:1", rate=1.0, duration_s=1.0)
    config = SweepConfig(start_rps=100, factor=2.0, cooldown_s=0.0, **cfg)
    return sweep(server, _Meter(), spec, config, 2), server  # type: ignore[arg-type]


def test_sweep_refines_past_its_growth_points_and_is_not_capped_when_a_rate_failed() -> None:
    result, server = _sweep(1000.0, refine=2, max_points=5)
    # growth 100..1600 (1600 fails), then 1200 (fails) and 1000 (holds) refine the bound
    assert server.rates == [100, 200, 400, 800, 1600, 1200, 1000]
    assert result["max_rps"] == 1000 and not result["capped"]
    assert result["by_bound_ms"]["10"]["failed_on"] == ["p99"]
    assert report.cap_note({"sweep": result}) == ""


def test_sweep_extends_while_every_point_holds_and_flags_a_capped_answer() -> None:
    result, server = _sweep(float("inf"), refine=1, max_points=3, extend=2)
    assert server.rates == [100, 200, 400, 800, 1600]  # 3 growth points + 2 extended
    assert result["max_rps"] == 1600 and result["capped"]
    assert "CAPPED" in report.cap_note({"sweep": result})


def test_find_python_takes_pyenvs_interpreter_over_its_shim(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from benchmarks import peer_venv

    shim = tmp_path / "shims" / "python3.12"
    real = tmp_path / "versions" / "3.12.1" / "bin" / "python3.12"
    for path in (shim, real):
        path.parent.mkdir(parents=True)
        path.write_text("#!/bin/sh\n")
        path.chmod(0o755)
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path))
    monkeypatch.setenv("PATH", str(shim.parent))
    assert peer_venv.find_python("3.12") == str(real)


def test_sweep_probes_down_for_a_bound_that_no_growth_point_held() -> None:
    result, server = _sweep(400.0, _SlowServer(400.0, 50.0), refine=0, bounds_ms=(10.0, 50.0))
    # growth 100..800 (800 fails 50 ms); 10 ms held nowhere: 50 (fails), then 25 (holds)
    assert server.rates == [100, 200, 400, 800, 50, 25]
    assert result["by_bound_ms"]["10"]["max_rps"] == 25
    assert result["by_bound_ms"]["50"]["max_rps"] == 400


def test_sweep_answers_none_held_after_probing_down_to_its_floor() -> None:
    server = _SlowServer(400.0, 0.0)  # 10 ms holds at no rate
    result, _ = _sweep(400.0, server, refine=0, probe_down=3, min_rps=30.0, bounds_ms=(10.0, 50.0))
    assert server.rates == [100, 200, 400, 800, 50]  # 25 would be below min_rps
    assert result["by_bound_ms"]["10"]["max_rps"] == 0.0


def test_a_ratio_over_a_stack_that_held_no_rate_is_met_and_says_so() -> None:
    key = "max_rps_p99_10ms"
    results: dict[str, Any] = {
        "e2e": {
            "berth": {key: 1000.0, "servers_cpu_ms_per_request": 0.7},
            "baseline": {key: 200.0},
            "tuned_peer": {key: 0.0},
            "berth_over_baseline": 5.0,
        },
        "features": {}, "predictor": {}, "predictor_peers": {"berth_over": {}},
    }  # fmt: skip
    rows = {t["name"]: t for t in compare_summary.targets(results, key)}
    tuned = rows[f"e2e {key}: Berth / tuned peer"]
    assert tuned["met"] and tuned["value"] is None and "held no rate" in tuned["note"]
    assert rows[f"e2e {key}: Berth / baseline"]["value"] == 5.0
    results["e2e"]["berth"][key] = 0.0  # neither held: no ratio, not met
    rows = {t["name"]: t for t in compare_summary.targets(results, key)}
    assert not rows[f"e2e {key}: Berth / tuned peer"]["met"]
