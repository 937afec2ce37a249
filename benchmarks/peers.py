"""The predictor peers users would pick instead of Berth's predictor, and their measurement.

* ``mlserver`` -- MLServer 1.7.1 (its own venv, :mod:`benchmarks.peer_venv`) with the custom
  runtime ``benchmarks/peer_runtimes/mlserver_ort.py`` (the same int8 ``model.onnx`` in ONNX
  Runtime, one intra-op thread) and adaptive batching as MLServer's docs set it
  (``max_batch_size`` 64, ``max_batch_time`` 1 ms); ``mlserver_nobatch`` the same without.
* ``triton`` -- Triton through NVIDIA's PyTriton 0.7.0 (its own venv, on Python 3.12: its stub
  fails on 3.11.7), ``benchmarks/peer_runtimes/pytriton_ort.py``, dynamic batching (64).
* ``floor`` -- not a peer but the least a predictor on the same server libraries spends per call
  (:mod:`benchmarks.predictor_floor`: one ORT run, fixed answers, no decoding): Berth's ratio to
  it is its share of what uvicorn and grpcio leave to take.

:func:`measure` sweeps every peer and Berth's predictor with the same 10-row and 1-row V2
requests from the same open-loop generator, over REST V2 and gRPC V2 (and, 10 rows, REST V2
with the binary tensor extension for the peers that read it: Berth and Triton), interleaved.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from benchmarks import peer_venv
from benchmarks.cpu import CpuMeter
from benchmarks.loadgen import LoadSpec, LoadWorker
from benchmarks.payloads import MODEL
from benchmarks.sweep import SweepConfig, sweep
from berth.stack import LOOPBACK, ServerProcess, free_port

RUNTIMES = Path(__file__).resolve().parent / "peer_runtimes"
PROTOCOLS = {"rest_v2": "v2", "grpc_v2": "grpc-v2", "rest_v2_binary": "v2-binary"}
BINARY = ("rest_v2_binary",)  # 10 rows only, peers that read the binary tensor extension
ROWS = (10, 1)  # 10-row figures at the top level of each protocol, 1-row under ``rows_1``
MLSERVER_SETTINGS = {"debug": False, "parallel_workers": 0}  # one process, as Berth's
MLSERVER_BATCHING = {"max_batch_size": 64, "max_batch_time": 0.001}
READY_TIMEOUT_S = 180.0
PortPicker = Callable[[], int]


@dataclass
class Peer:
    """A predictor on loopback: its process, ports, settings, or why it could not run."""

    name: str
    settings: dict[str, Any]
    proc: ServerProcess | None = None
    http: int = 0
    grpc: int = 0
    error: str | None = None
    binary: bool = False  # reads REST V2's binary tensor extension (MLServer does not)

    @property
    def pid(self) -> int | None:
        return self.proc.proc.pid if self.proc is not None and self.proc.proc else None

    def targets(self) -> dict[str, str]:
        rest = f"http://{LOOPBACK}:{self.http}"
        return {"rest_v2": rest, "grpc_v2": f"{LOOPBACK}:{self.grpc}", "rest_v2_binary": rest}

    def wait_ready(self) -> None:
        if self.proc is None or self.error:
            return
        try:
            self.proc.wait_ready(READY_TIMEOUT_S)
        except (RuntimeError, TimeoutError) as exc:
            self.error = _last_error(str(exc))
            self.stop()

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()


def _last_error(log: str) -> str:
    """The last line of a failed start's log that names an error (else its last line)."""
    lines = log.strip().splitlines()
    errors = [ln for ln in lines if "Error" in ln or "error" in ln] or lines[-1:] or ["?"]
    return errors[-1].strip()[:400]


def _spawn(peer: Peer, argv: list[str], env: dict[str, str], logs: Path, cwd: Path) -> Peer:
    """Start ``argv`` (the peer venv's interpreter, not this one) for ``peer``'s ports."""
    ready = f"http://{LOOPBACK}:{peer.http}/v2/models/{MODEL}/ready"
    logs.mkdir(parents=True, exist_ok=True)
    proc = ServerProcess([], ready, env=env, log_path=logs / f"peer-{peer.name}.log", cwd=cwd)
    proc.args = argv
    peer.proc = proc.start()
    return peer


def start_mlserver(
    name: str, artifact: Path, root: Path, logs: Path, batching: bool, port: PortPicker = free_port
) -> Peer:
    settings = {**MLSERVER_SETTINGS, **(MLSERVER_BATCHING if batching else {})}
    peer = Peer(name, {"mlserver": "1.7.1", "runtime": "mlserver_ort.OrtRuntime", **settings})
    try:
        venv = peer_venv.ensure("mlserver")
    except peer_venv.PeerUnavailable as exc:
        peer.error = str(exc)
        return peer
    repo = root / name
    (repo / MODEL).mkdir(parents=True, exist_ok=True)
    peer.http, peer.grpc = port(), port()
    server = {
        "host": LOOPBACK,
        "http_port": peer.http,
        "grpc_port": peer.grpc,
        "metrics_port": port(),
        **{k: v for k, v in settings.items() if k in MLSERVER_SETTINGS},
    }
    model = {
        "name": MODEL,
        "implementation": "mlserver_ort.OrtRuntime",
        "parameters": {"uri": str(artifact / "model.onnx"), "version": "v1"},
        **{k: v for k, v in settings.items() if k in MLSERVER_BATCHING},
    }
    (repo / "settings.json").write_text(json.dumps(server))
    (repo / MODEL / "model-settings.json").write_text(json.dumps(model))
    argv = [str(venv / "bin" / "mlserver"), "start", str(repo)]
    return _spawn(peer, argv, {"PYTHONPATH": str(RUNTIMES)}, logs, repo)


def start_triton(artifact: Path, root: Path, logs: Path, port: PortPicker = free_port) -> Peer:
    settings = {"nvidia-pytriton": "0.7.0", "max_batch_size": 64, "python": "3.12"}
    peer = Peer("triton", settings, binary=True)
    try:
        venv = peer_venv.ensure("pytriton")
    except peer_venv.PeerUnavailable as exc:
        peer.error = str(exc)
        return peer
    python = str(venv / "bin" / "python")
    env = {"LD_LIBRARY_PATH": peer_venv.libdir(python)}  # the stub embeds libpython3.12
    peer.http, peer.grpc = port(), port()
    argv = [
        *(python, str(RUNTIMES / "pytriton_ort.py"), "--model", MODEL),
        *("--onnx", str(artifact / "model.onnx")),
        *("--http-port", str(peer.http), "--grpc-port", str(peer.grpc)),
        *("--metrics-port", str(port())),
    ]
    root.mkdir(parents=True, exist_ok=True)
    return _spawn(peer, argv, env, logs, root)


def start_floor(artifact: Path, logs: Path, port: PortPicker = free_port) -> Peer:
    peer = Peer("floor", {"server": "bare ASGI on uvicorn; grpc.aio generic handler, raw bytes"})
    peer.http, peer.grpc = port(), port()
    argv = [
        *(sys.executable, "-m", "benchmarks.predictor_floor"),
        *("--model", str(artifact / "model.onnx")),
        *("--http-port", str(peer.http), "--grpc-port", str(peer.grpc)),
    ]
    return _spawn(peer, argv, {}, logs, RUNTIMES.parent.parent)


def rate_key(bound_ms: float) -> str:
    return f"max_rps_p99_{bound_ms:g}ms".replace(".", "_")


def measure(
    worker: LoadWorker,
    peers: dict[str, Peer],
    base: LoadSpec,
    cfg: SweepConfig,
    cores: int,
) -> dict[str, Any]:
    """Sweep every running peer per rows x protocol, peers interleaved; ratios to Berth."""
    key = rate_key(min(cfg.bounds_ms))
    out: dict[str, Any] = {"bound_ms": min(cfg.bounds_ms), "rows": list(ROWS)}
    running = {n: p for n, p in peers.items() if p.error is None and p.pid is not None}
    for name, peer in peers.items():
        out[name] = {"settings": peer.settings}
        if name not in running:
            out[name]["unavailable"] = peer.error or "not started"
    for rows in ROWS:
        for proto, wire in PROTOCOLS.items():
            for name, peer in running.items():
                if proto in BINARY and (not peer.binary or rows != ROWS[0]):
                    continue
                assert peer.pid is not None
                meter = CpuMeter({"predictor": peer.pid, "generator": worker.pid})
                spec = replace(
                    base,
                    protocol=wire,
                    target=peer.targets()[proto],
                    candidates=rows,
                    payload="features",
                    label=f"{name}-{proto}-rows{rows}",
                )
                result = sweep(worker, meter, spec, cfg, cores)
                print(
                    f"[benchmarks] predictor peer {name} {proto} {rows} rows: "
                    f"{result['max_rps']} rps ({len(result['points'])} points)",
                    file=sys.stderr,
                    flush=True,
                )
                best = result["by_bound_ms"][f"{min(cfg.bounds_ms):g}"]["best"]
                entry = {
                    **{rate_key(float(b)): v["max_rps"] for b, v in result["by_bound_ms"].items()},
                    "cpu_ms_per_request": best["cpu_ms_per_request"] if best else None,
                    "sweep": result,
                }
                slot = out[name].setdefault(proto, {})
                if rows == ROWS[0]:
                    slot.update(entry)
                else:
                    slot[f"rows_{rows}"] = entry
    out["berth_over"] = ratios(out, key)
    out["berth_over_by_bound"] = {  # looser bounds: readable on a busy machine too
        rate_key(b): ratios(out, rate_key(b)) for b in sorted(cfg.bounds_ms)[1:]
    }
    return out


def ratios(out: dict[str, Any], key: str) -> dict[str, Any]:
    """Berth's max rps over each peer's, per protocol (10 rows, and ``rows_1``)."""
    berth = out.get("berth", {})
    result: dict[str, Any] = {}
    for name, entry in out.items():
        if name == "berth" or not isinstance(entry, dict) or "settings" not in entry:
            continue
        for proto in PROTOCOLS:
            if proto in BINARY and proto not in entry:
                continue
            for sub in ("",) if proto in BINARY else ("", "rows_1"):
                mine = berth.get(proto, {})
                theirs = entry.get(proto, {})
                if sub:
                    mine, theirs = mine.get(sub, {}), theirs.get(sub, {})
                a, b = mine.get(key), theirs.get(key)
                label = f"{name}.{proto}" + (f".{sub}" if sub else "")
                result[label] = round(a / b, 2) if a and b else None
    return result
