"""Local mode as a user runs it: ``berth demo`` from a fresh clone, ``berth up`` + SIGTERM."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from berth.stack import LOOPBACK, RedisServer

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
BERTH = Path(sys.executable).with_name("berth")
# Definitions and parquet data only: the registry records the original's absolute SQLite path,
# and applying a copy of it would drop the shared `built` repo's online tables.
FRESH = shutil.ignore_patterns("registry.db", "online_store.db")


@pytest.fixture(autouse=True)
def _needs_predictor() -> None:
    if importlib.util.find_spec("berth_predictor.__main__") is None:
        pytest.skip("predictors/berth_predictor has no __main__ yet")


def clone_env(clone: Path) -> dict[str, str]:
    """The venv of this checkout, but every Berth import resolved inside ``clone``."""
    paths = [clone, clone / "predictors", clone / "transformers"]
    extra = os.environ.get("PYTHONPATH")
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([*(str(p) for p in paths), *([extra] if extra else [])]),
    }


def fresh_clone(dest: Path) -> Path:
    """What ``git clone`` of this work gives: the tracked and not-ignored files, nothing built."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    for name in filter(None, listed.decode().split("\0")):
        source = ROOT / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    return dest


def test_berth_demo_from_a_fresh_clone(tmp_path: Path) -> None:
    """The README's `berth demo` (with `bash scripts/setup.sh` replaced by this venv)."""
    clone = fresh_clone(tmp_path / "berth")
    assert not (clone / "artifacts").exists()
    assert not (clone / "feature_repo" / "data").exists()
    started = time.monotonic()
    result = subprocess.run(
        [str(BERTH), "demo"],
        cwd=clone,
        env=clone_env(clone),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert (clone / "artifacts" / "driver-ranking" / "metadata.json").exists()
    assert "ranked by P(accept)" in result.stdout
    ranked = re.findall(r"^\s+\d+\. driver (\d+)\s+([01]\.\d{4})", result.stdout, re.MULTILINE)
    assert len(ranked) == 3 * 8
    assert "V1 REST, V2 REST and V2 gRPC agree on the scores: yes" in result.stdout
    expected_store = "private redis-server" if RedisServer.available() else "SQLite"
    assert expected_store in result.stdout
    assert "everything stopped" in result.stdout
    print(f"berth demo from a fresh clone: {time.monotonic() - started:.0f}s\n{result.stdout}")

    # Again, now that the artifact exists: well under a minute.
    started = time.monotonic()
    again = subprocess.run(
        [str(BERTH), "demo", "--online-store", "sqlite"],
        cwd=clone,
        env=clone_env(clone),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert again.returncode == 0, (again.stdout + again.stderr)[-4000:]
    assert "Feast SQLite" in again.stdout
    assert time.monotonic() - started < 60


def _port_open(port: int, host: str = LOOPBACK) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def _non_loopback_ipv4() -> str | None:
    """An address of this machine on a real interface (``hostname -I``), if it has one."""
    try:
        out = subprocess.run(["hostname", "-I"], capture_output=True, text=True, timeout=5)
    except OSError:
        return None
    return next((a for a in out.stdout.split() if "." in a and not a.startswith("127.")), None)


def _reflected_services(target: str) -> list[str]:
    import grpc
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    with grpc.insecure_channel(target) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        answer = next(iter(stub.ServerReflectionInfo(iter([request]), timeout=10)))
    return sorted(s.name for s in answer.list_services_response.service)


def test_berth_up_serves_the_printed_examples_and_stops_on_sigterm(
    built: tuple[Path, Path], tmp_path: Path
) -> None:
    from berth.stack import free_port

    repo = Path(shutil.copytree(built[0], tmp_path / "repo", ignore=FRESH))
    port, grpc_port = free_port(), free_port()
    proc = subprocess.Popen(
        [
            str(BERTH),
            "up",
            *("--repo", str(repo), "--artifact", str(built[1])),
            *("--port", str(port), "--grpc-port", str(grpc_port)),
            *("--online-store", "sqlite", "--logs", str(tmp_path / "logs")),
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line and proc.poll() is not None:
                break
            lines.append(line)
            if line.startswith("Ctrl-C"):
                break
        output = "".join(lines)
        assert "Ctrl-C" in output, output
        found = re.findall(r"predictor\s+REST \S+:(\d+)\s+gRPC \S+:(\d+)", output)
        predictor_ports = [int(p) for p in found[0]]

        # Loopback only (found: KServe bound every interface, the unload endpoint included).
        outside = _non_loopback_ipv4()
        for p in (port, grpc_port, *predictor_ports):
            assert _port_open(p)
            assert outside is None or not _port_open(p, outside), f"{p} open on {outside}"
        # grpcurl works without the .proto in local mode (server reflection on).
        assert "inference.GRPCInferenceService" in _reflected_services(f"{LOOPBACK}:{grpc_port}")

        # The printed examples work as printed.
        curl = re.search(r"^  (curl -s \S+:predict .*?)$\n^    (-d .*)$", output, re.MULTILINE)
        assert curl is not None, output
        command = curl.group(1).removesuffix("\\").strip() + " " + curl.group(2)
        answer = subprocess.run(
            command,
            shell=True,
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
        assert '"predictions":[' in answer
        snippet = output.split("python - <<'EOF'\n", 1)[1].split("\nEOF", 1)[0]
        scores = subprocess.run(
            [sys.executable, "-c", snippet], capture_output=True, text=True, timeout=30, check=True
        ).stdout
        assert scores.startswith("[")

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:  # a failed assertion: stop it the way a user would
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
    rest = proc.stdout.read() if proc.stdout else ""
    assert "stopping" in rest
    for p in (port, grpc_port, *predictor_ports):
        assert not _port_open(p), f"port {p} still served after berth up stopped"
