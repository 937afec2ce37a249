"""berth.stack.Stack with real child processes (``python -m http.server`` and a crash), and
what a ServingPair starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from berth.stack import LOOPBACK, NotReady, Ports, ServerProcess, ServingPair, Stack, free_port


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


class Pair(ServingPair):
    def feature_env(self) -> dict[str, str]:
        return {"FEATURES": "yes"}


@pytest.mark.parametrize(("hop", "port"), [("grpc-v2", "grpc_target"), ("v2", "url")])
def test_a_pair_starts_the_transformer_on_its_predictor_hop(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, hop: str, port: str
) -> None:
    monkeypatch.setattr(ServerProcess, "start", lambda self: self)  # build, never spawn
    with Pair("m", tmp_path / "art", tmp_path, "berth", hop, transformer_env={"T": "1"}) as pair:
        assert pair.transformer is not None and pair.predictor is not None
        args = pair.transformer.args
        assert args[args.index("--predictor_host") + 1] == getattr(pair.predictor_ports, port)
        assert args[args.index("--predictor_protocol") + 1] == hop
        assert {"FEATURES": "yes", "T": "1"}.items() <= pair.transformer.env.items()
        assert pair.transformer.log_path == tmp_path / "berth-transformer.log"
        assert pair.infer_url == f"{pair.transformer_ports.url}/v1/models/m:predict"
    assert pair.processes.procs == {}
