"""Repeated looks: K failing looks in a row roll back, M passing looks promote, an
inconclusive look breaks both streaks; ``--state`` carries them across one-shot calls and
``--watch`` within one call, one line per look. The CLI reads a real prometheus_client
registry served on loopback (``--scrape``)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Histogram, start_http_server

from berth.rollout.analyze import Look, Verdict
from berth.rollout.errors import RolloutError
from berth.rollout.looks import Tally, load_tally, save_tally
from berth.rollout.policy import RolloutPolicy
from berth.stack import LOOPBACK, free_port

POLICY = RolloutPolicy(fail_looks=2, pass_looks=3)


def look(verdict: Verdict) -> Look:
    return Look(verdict, [], {})


def test_streaks() -> None:
    tally = Tally("v1", "v2")
    assert [tally.record(look(v), POLICY) for v in ("fail", "inconclusive", "fail")] == [
        "hold"
    ] * 3  # an inconclusive look breaks the failing streak
    assert tally.record(look("fail"), POLICY) == "rollback"
    tally = Tally("v1", "v2")
    seq = ["pass", "pass", "fail", "pass", "pass", "pass"]
    assert [tally.record(look(v), POLICY) for v in seq][-1] == "promote"
    assert (tally.looks, tally.passes, tally.fails) == (6, 3, 0)


def test_state_file_round_trip_and_reset(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    tally = Tally("v1", "v2")
    tally.record(look("fail"), POLICY)
    save_tally(path, tally)
    again = load_tally(path, "v1", "v2")
    assert (again.fails, again.looks) == (1, 1)
    assert load_tally(path, "v1", "v3").looks == 0  # another canary: a fresh start
    path.write_text("{not json")
    with pytest.raises(RolloutError, match="unreadable state file"):
        load_tally(path, "v1", "v2")


@pytest.fixture
def pod() -> Iterator[tuple[str, Any]]:
    """A real prometheus_client registry on a loopback port, as a transformer pod serves it."""
    registry = CollectorRegistry()
    hist = Histogram(
        "berth_transformer_model_request_seconds",
        "latency",
        ["model_version", "outcome"],
        buckets=(0.002, 0.004, 0.006, 0.01, 0.05),
        registry=registry,
    )
    port = free_port()
    server, thread = start_http_server(port, addr=LOOPBACK, registry=registry)
    try:
        yield f"http://{LOOPBACK}:{port}/metrics", hist
    finally:
        server.shutdown()
        thread.join(5)


def serve(hist: Any, canary_error_share: float, n: int = 1000) -> None:
    for i in range(n):
        hist.labels("v1", "200").observe(0.003)
        failed = i < canary_error_share * n
        hist.labels("v2", "503" if failed else "200").observe(0.003)


def analyze(url: str, *extra: str) -> int:
    from berth.cli import main

    argv = ["rollout", "analyze", "--scrape", url, "--primary-version", "v1"]
    return main([*argv, "--canary-version", "v2", *extra])


def test_one_shot_calls_with_a_state_file(
    pod: tuple[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, hist = pod
    serve(hist, 0.05)
    state = str(tmp_path / "state.json")
    assert analyze(url, "--state", state) == 3  # one failing look of two: hold
    out = capsys.readouterr().out
    assert "look 1 FAIL" in out and "failing looks 1/2" in out and "-> HOLD" in out
    assert analyze(url, "--state", state, "-o", "json") == 4
    doc = json.loads(capsys.readouterr().out)
    assert (doc["look"], doc["verdict"], doc["action"], doc["fails"]) == (2, "fail", "rollback", 2)
    errors = next(c for c in doc["checks"] if c["signal"] == "errors")
    assert errors["figures"]["lower"] > 0.01


def test_watch_promotes_after_three_passing_looks(
    pod: tuple[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    url, hist = pod
    serve(hist, 0.0)
    argv = ("--watch", "--interval", "0.05", "--looks", "5", "-o", "json")
    assert analyze(url, *argv) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [d["action"] for d in lines] == ["continue", "continue", "promote"]
    assert all(d["verdict"] == "pass" for d in lines)
    assert lines[0]["measurements"]["canary"]["requests"] == 1000
