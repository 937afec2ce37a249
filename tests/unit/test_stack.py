"""berth.stack.Stack with real child processes (``python -m http.server`` and a crash)."""

from __future__ import annotations

from pathlib import Path

import pytest

from berth.stack import LOOPBACK, NotReady, Ports, ServerProcess, Stack, free_port


def http_server(directory: Path) -> ServerProcess:
    port = free_port()
    args = ["-m", "http.server", str(port), "--bind", LOOPBACK, "--directory", str(directory)]
    return ServerProcess(args, f"http://{LOOPBACK}:{port}/")


def test_started_processes_get_ready_and_are_all_stopped(tmp_path: Path) -> None:
    with Stack(logs=tmp_path / "logs") as stack:
        first = stack.start("first", http_server(tmp_path))
        second = stack.start("second", http_server(tmp_path))
        stack.wait_ready(60)
        assert list(stack.pids()) == ["first", "second"]
        assert stack.failed() is None and stack.get("first") is first
        assert stack.log_path("first") == tmp_path / "logs" / "first.log"
    assert first.proc is not None and first.proc.poll() is not None
    assert second.proc is not None and second.proc.poll() is not None
    assert stack.procs == {}


def test_a_crash_is_not_ready_with_its_role_and_log_tail(tmp_path: Path) -> None:
    crash = ServerProcess(
        ["-c", "import sys; print('boom: no model'); sys.exit(3)"],
        f"http://{LOOPBACK}:{free_port()}/",
        log_path=tmp_path / "crash.log",
    )
    with Stack() as stack:
        stack.start("crash", crash)
        with pytest.raises(NotReady, match="boom: no model") as caught:
            stack.wait_ready(60)
        assert caught.value.role == "crash"
        assert stack.failed() == "crash"


def test_starting_a_role_again_replaces_and_stops_the_first(tmp_path: Path) -> None:
    with Stack() as stack:
        old = stack.start("server", http_server(tmp_path))
        stack.wait_ready(60)
        new = stack.start("server", http_server(tmp_path))
        assert old.proc is not None and old.proc.poll() is not None
        assert stack.get("server") is new
        stack.wait_ready(60, "server")


def test_ports_name_their_urls() -> None:
    ports = Ports(8080, 8081)
    assert (ports.url, ports.grpc_target) == (f"http://{LOOPBACK}:8080", f"{LOOPBACK}:8081")
