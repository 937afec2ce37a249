"""The two serving stacks under test, started through their real entrypoints on loopback.

* :class:`BerthStack` -- ``python -m berth_predictor`` (int8, adaptive batching) and
  ``python -m berth_transformer`` (direct Redis read, gRPC V2 to the predictor).
* :class:`BaselineStack` -- ``python -m benchmarks.baseline.predictor`` (fp32, sync, no
  batching) and ``python -m benchmarks.baseline.transformer`` (sync Feast SDK read on the loop,
  KServe's REST V1 client to the predictor).

Both read the same :class:`~benchmarks.workspace.Workspace` (feature repo, Redis, artifact).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.payloads import MODEL
from benchmarks.workspace import Workspace
from berth.stack import (
    LOOPBACK,
    READY_TIMEOUT_S,
    Ports,
    ServerProcess,
    Stack,
    feature_env,
    predictor_process,
    transformer_process,
)

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass
class ServingPair:
    """A predictor and a transformer process; :meth:`stop` always tears both down."""

    name: str
    ws: Workspace
    logs: Path
    predictor_env: dict[str, str] = field(default_factory=dict)
    transformer_env: dict[str, str] = field(default_factory=dict)
    processes: Stack = field(default_factory=Stack)

    def __post_init__(self) -> None:
        self.predictor_ports, self.ports = Ports.free(), Ports.free()

    @property
    def predictor(self) -> ServerProcess | None:
        return self.processes.get("predictor")

    @property
    def transformer(self) -> ServerProcess | None:
        return self.processes.get("transformer")

    @property
    def url(self) -> str:
        return self.ports.url

    @property
    def grpc_target(self) -> str:
        return self.ports.grpc_target

    @property
    def predictor_url(self) -> str:
        return self.predictor_ports.url

    def pids(self) -> dict[str, int]:
        return dict(reversed(self.processes.pids().items()))  # transformer first

    def start(self) -> ServingPair:
        raise NotImplementedError

    def wait_ready(self) -> ServingPair:
        self.processes.wait_ready(READY_TIMEOUT_S)
        return self

    def stop(self) -> None:
        self.processes.stop()

    def log_path(self, role: str) -> Path:
        self.logs.mkdir(parents=True, exist_ok=True)
        return self.logs / f"{self.name}-{role}.log"

    def _spawn(self, role: str, args: list[str], ready: str, env: dict[str, str]) -> ServerProcess:
        proc = ServerProcess(args, ready, env=env, log_path=self.log_path(role), cwd=PROJECT_ROOT)
        return self.processes.start(role, proc)


class BerthStack(ServingPair):
    def transformer_env_for(self, **extra: str) -> dict[str, str]:
        """A Berth transformer's environment on this workspace (plus ``extra``)."""
        ws = self.ws
        env = feature_env(ws.repo, ws.artifact, ws.redis.connection_string)
        return {**env, **self.transformer_env, **extra}

    def start(self) -> BerthStack:
        self.processes.start(
            "predictor",
            predictor_process(
                MODEL,
                self.ws.artifact,
                self.predictor_ports,
                env=self.predictor_env,
                log_path=self.log_path("predictor"),
            ),
        )
        self.processes.start(
            "transformer",
            transformer_process(  # the shipped default hop: REST V2 to the predictor
                MODEL,
                self.predictor_ports.url,
                self.ports,
                env=self.transformer_env_for(),
                log_path=self.log_path("transformer"),
                predictor_protocol="v2",
            ),
        )
        return self


class BaselineStack(ServingPair):
    def start(self) -> BaselineStack:
        ws = self.ws
        self._spawn(
            "predictor",
            [
                *("-m", "benchmarks.baseline.predictor", "--model_name", MODEL),
                *("--model_dir", str(ws.artifact)),
                *(
                    "--http_port",
                    str(self.predictor_ports.http),
                    "--grpc_port",
                    str(self.predictor_ports.grpc),
                ),
            ],
            f"{self.predictor_url}/v2/models/{MODEL}/ready",
            self.predictor_env,
        )
        self._spawn(
            "transformer",
            [
                *("-m", "benchmarks.baseline.transformer", "--model_name", MODEL),
                *("--predictor_host", f"{LOOPBACK}:{self.predictor_ports.http}"),
                *("--predictor_protocol", "v1"),
                *("--repo", str(ws.repo)),
                *("--http_port", str(self.ports.http), "--grpc_port", str(self.ports.grpc)),
            ],
            f"{self.url}/v2/models/{MODEL}/ready",
            {**ws.redis_env, **self.transformer_env},
        )
        return self
