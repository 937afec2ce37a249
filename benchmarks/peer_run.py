"""Everything ``compare`` runs beside Berth and the baseline (skipped by ``--smoke``):

* predictor peers (:mod:`benchmarks.peers`): MLServer with and without adaptive batching,
  Triton (PyTriton), swept with Berth's own predictor;
* end-to-end chains swept like Berth and the baseline (same V1 requests, same generator):
  ``tuned_peer`` (:mod:`benchmarks.tuned.transformer` -> the ``mlserver`` peer over pooled
  REST V2), ``floor`` (:mod:`benchmarks.floor`: bare ASGI + one pipelined Redis read + one ORT
  run), and Berth's transformer calling the same Berth predictor over the hop it does *not*
  use as started (``berth_grpc_hop`` beside the default REST V2 hop, ``berth_rest_hop`` beside
  a gRPC one): the transformer->predictor hop measured both ways.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from statistics import median
from typing import Any

from benchmarks import peers
from benchmarks.cpu import CpuMeter
from benchmarks.loadgen import LoadSpec, LoadWorker
from benchmarks.payloads import MODEL
from benchmarks.stacks import PROJECT_ROOT, BerthStack
from benchmarks.sweep import measure
from benchmarks.workspace import Workspace
from berth.stack import LOOPBACK, READY_TIMEOUT_S, ServerProcess, free_port, transformer_process

DEFAULT_HOP = "v2"  # the transformer's own --predictor_protocol default (REST V2, measured)
HOP_CHAINS = {"v2": "berth_rest_hop", "grpc-v2": "berth_grpc_hop"}  # protocol -> chain name
HOP_KEYS = {"v2": "rest_v2", "grpc-v2": "grpc_v2"}  # protocol -> results key


def hop_of(proc: ServerProcess | None) -> str:
    """The ``--predictor_protocol`` a Berth transformer process was started with."""
    args = proc.args if proc is not None else []
    flag = "--predictor_protocol"
    return args[args.index(flag) + 1] if flag in args[:-1] else DEFAULT_HOP


@dataclass
class Chain:
    """A stack under end-to-end load: its URL and the processes to meter (role -> process);
    ``owned`` are the ones this chain started (and stops)."""

    name: str
    url: str
    procs: dict[str, ServerProcess]
    owned: list[ServerProcess] = field(default_factory=list)

    def pids(self) -> dict[str, int]:
        return {r: p.proc.pid for r, p in self.procs.items() if p.proc is not None}


class Ports:
    """Free loopback ports, never one handed out before in this run: a server that is slow to
    bind (Python imports on a busy machine) must not find its port taken by a peer."""

    def __init__(self, taken: set[int]) -> None:
        self.taken = set(taken)

    def __call__(self) -> int:
        while (port := free_port()) in self.taken:
            pass
        self.taken.add(port)
        return port


@dataclass
class PeerRun:
    ws: Workspace
    logs: Path
    berth: BerthStack
    port: Ports
    predictors: dict[str, peers.Peer] = field(default_factory=dict)
    chains: dict[str, Chain] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def start(self) -> PeerRun:
        """Start every peer and chain (the Berth stack is already starting)."""
        root = self.ws.root / "peers"
        art = self.ws.artifact
        self.predictors = {
            "mlserver": peers.start_mlserver(
                "mlserver", art, root, self.logs, batching=True, port=self.port
            ),
            "mlserver_nobatch": peers.start_mlserver(
                "mlserver_nobatch", art, root, self.logs, batching=False, port=self.port
            ),
            "triton": peers.start_triton(art, root / "triton", self.logs, port=self.port),
            "floor": peers.start_floor(art, self.logs, port=self.port),
        }
        floor_port = self.port()
        floor = self._server(
            "floor",
            [
                *("-m", "benchmarks.floor", "--repo", str(self.ws.repo)),
                *("--model", str(art / "model.onnx"), "--port", str(floor_port)),
            ],
            f"http://{LOOPBACK}:{floor_port}/ready",
        )
        self.chains["floor"] = Chain(
            "floor", f"http://{LOOPBACK}:{floor_port}", {"floor": floor}, [floor]
        )
        other = "grpc-v2" if self.hops()[0] == "v2" else "v2"
        port = self.berth.predictor_ports.http if other == "v2" else self.berth.predictor_ports.grpc
        hop_ports = (self.port(), self.port())
        hop = transformer_process(
            MODEL,
            f"{LOOPBACK}:{port}",
            hop_ports,
            env=self.berth.transformer_env_for(),
            log_path=self.logs / f"{HOP_CHAINS[other]}-transformer.log",
            predictor_protocol=other,
        ).start()
        self.chains[HOP_CHAINS[other]] = Chain(
            HOP_CHAINS[other], f"http://{LOOPBACK}:{hop_ports[0]}", {"transformer": hop}, [hop]
        )
        return self

    def hops(self) -> tuple[str, str]:
        """Berth's own hop (as its stack started it) and the other one's chain name."""
        mine = hop_of(self.berth.transformer)
        return mine, HOP_CHAINS["grpc-v2" if mine == "v2" else "v2"]

    def _server(self, name: str, args: list[str], ready: str) -> ServerProcess:
        self.logs.mkdir(parents=True, exist_ok=True)
        return ServerProcess(
            args, ready, env=self.ws.redis_env, log_path=self.logs / f"{name}.log", cwd=PROJECT_ROOT
        ).start()

    def wait_ready(self) -> PeerRun:
        """Wait for everything; then start the tuned chain on the ready MLServer peer."""
        for peer in self.predictors.values():
            peer.wait_ready()
            if peer.error:
                self.notes.append(f"predictor peer {peer.name} did not run: {peer.error}")
        assert self.berth.predictor is not None
        for chain in self.chains.values():
            for proc in chain.owned:
                proc.wait_ready(READY_TIMEOUT_S)
        self.chains[self.hops()[1]].procs["predictor"] = self.berth.predictor
        mls = self.predictors["mlserver"]
        if mls.proc is not None and not mls.error:
            self._start_tuned(mls)
        return self

    def _start_tuned(self, mls: peers.Peer) -> None:
        port = self.port()
        tuned = self._server(
            "tuned_peer-transformer",
            [
                *("-m", "benchmarks.tuned.transformer", "--model_name", MODEL),
                *("--repo", str(self.ws.repo), "--predictor_url", mls.targets()["rest_v2"]),
                *("--http_port", str(port), "--grpc_port", str(self.port())),
            ],
            f"http://{LOOPBACK}:{port}/v2/models/{MODEL}/ready",
        )
        assert mls.proc is not None
        chain = Chain(
            "tuned_peer",
            f"http://{LOOPBACK}:{port}",
            {"transformer": tuned, "predictor": mls.proc},
            [tuned],
        )
        try:
            tuned.wait_ready(READY_TIMEOUT_S)
            self.chains["tuned_peer"] = chain
        except (RuntimeError, TimeoutError) as exc:
            tuned.stop()
            self.notes.append(f"tuned peer chain did not start: {str(exc)[-400:]}")

    def predictor_targets(self) -> dict[str, peers.Peer]:
        """Berth's own predictor as a peer beside the others (first: its figures lead)."""
        berth = peers.Peer(
            "berth",
            {"batching": "adaptive (defaults)", "intra_op_threads": 1},
            proc=self.berth.predictor,
            http=self.berth.predictor_ports.http,
            grpc=self.berth.predictor_ports.grpc,
            binary=True,
        )
        return {"berth": berth, **self.predictors}

    def stop(self) -> None:
        for chain in self.chains.values():
            for proc in chain.owned:
                proc.stop()
        for peer in self.predictors.values():
            peer.stop()


def e2e_entry(result: dict[str, Any], key: str, cpu_bound: dict[str, Any]) -> dict[str, Any]:
    """A chain's end-to-end figures in the shape of ``e2e.berth``."""
    entry: dict[str, Any] = {
        peers.rate_key(float(b)): v["max_rps"] for b, v in result["by_bound_ms"].items()
    }
    entry["sweep"] = result
    entry["cpu_bound"] = cpu_bound
    entry["servers_cpu_ms_per_request"] = cpu_bound.get("cpu_ms_per_request", {}).get("servers")
    entry.setdefault(key, 0.0)
    return entry


def same_rate(
    worker: LoadWorker,
    chains: dict[str, Any],
    meters: dict[str, CpuMeter],
    base: LoadSpec,
    rounds: int,
    cores: int,
) -> dict[str, Any]:
    """Alternating points of each chain at one rate (``base.rate``), ``rounds`` each: CPU per
    request compared at equal load (a sweep's busiest points differ in rate, and CPU per
    request falls as load amortizes fixed work), medians over rounds so that a noisy
    neighbour hits both sides."""
    points: dict[str, list[dict[str, Any]]] = {name: [] for name in chains}
    for _ in range(rounds):
        for name, chain in chains.items():
            spec = replace(base, target=chain.url, label=f"same-rate-{name}")
            points[name].append(measure(worker, meters[name], spec, cores))
    out: dict[str, Any] = {"rate": base.rate, "rounds": rounds}
    for name, runs in points.items():
        cpu = [p["cpu_ms_per_request"] for p in runs]
        out[name] = {
            "servers_cpu_ms_per_request": round(median(c["servers"] for c in cpu), 3),
            "transformer_cpu_ms_per_request": round(median(c["transformer"] for c in cpu), 3),
            "predictor_cpu_ms_per_request": round(median(c["predictor"] for c in cpu), 3),
            "p50_ms": round(median(p["latency_ms"].get("p50", 0.0) for p in runs), 3),
            "p99_ms": round(median(p["latency_ms"].get("p99", 0.0) for p in runs), 3),
            "errors": sum(sum(p["errors"].values()) for p in runs),
            "foreign_cpu_pct": round(median(p["foreign_cpu_pct"] for p in runs), 1),
        }
    return out
