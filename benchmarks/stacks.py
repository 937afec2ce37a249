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
from berth.testing import (
    LOOPBACK,
    ServerProcess,
    free_port,
    predictor_process,
    transformer_process,
)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
READY_TIMEOUT_S = 180.0


@dataclass
class Stack:
    """A predictor and a transformer process; :meth:`stop` always tears both down."""

    name: str
    ws: Workspace
    logs: Path
    predictor_env: dict[str, str] = field(default_factory=dict)
    transformer_env: dict[str, str] = field(default_factory=dict)
    predictor: ServerProcess | None = None
    transformer: ServerProcess | None = None

    def __post_init__(self) -> None:
        self.predictor_http, self.predictor_grpc = free_port(), free_port()
        self.http, self.grpc = free_port(), free_port()

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.http}"

    @property
    def grpc_target(self) -> str:
        return f"{LOOPBACK}:{self.grpc}"

    @property
    def predictor_url(self) -> str:
        return f"http://{LOOPBACK}:{self.predictor_http}"

    def pids(self) -> dict[str, int]:
        out = {}
        for role, proc in (("transformer", self.transformer), ("predictor", self.predictor)):
            if proc is not None and proc.proc is not None:
                out[role] = proc.proc.pid
        return out

    def start(self) -> Stack:
        raise NotImplementedError

    def wait_ready(self) -> Stack:
        for proc in (self.predictor, self.transformer):
            assert proc is not None
            proc.wait_ready(READY_TIMEOUT_S)
        return self

    def stop(self) -> None:
        for proc in (self.transformer, self.predictor):
            if proc is not None:
                proc.stop()

    def _spawn(self, role: str, args: list[str], ready: str, env: dict[str, str]) -> ServerProcess:
        self.logs.mkdir(parents=True, exist_ok=True)
        return ServerProcess(
            args, ready, env=env, log_path=self.logs / f"{self.name}-{role}.log", cwd=PROJECT_ROOT
        ).start()


class BerthStack(Stack):
    def transformer_env_for(self, **extra: str) -> dict[str, str]:
        """A Berth transformer's environment on this workspace (plus ``extra``)."""
        ws = self.ws
        return {
            **ws.redis_env,
            "BERTH_TRANSFORMER_FEATURE_REPO": str(ws.repo),
            "BERTH_TRANSFORMER_MODEL_METADATA": str(ws.artifact / "metadata.json"),
            **self.transformer_env,
            **extra,
        }

    def start(self) -> BerthStack:
        self.logs.mkdir(parents=True, exist_ok=True)
        self.predictor = predictor_process(
            MODEL,
            self.ws.artifact,
            (self.predictor_http, self.predictor_grpc),
            env=self.predictor_env,
            log_path=self.logs / f"{self.name}-predictor.log",
        ).start()
        self.transformer = transformer_process(
            MODEL,
            f"{LOOPBACK}:{self.predictor_grpc}",
            (self.http, self.grpc),
            env=self.transformer_env_for(),
            log_path=self.logs / f"{self.name}-transformer.log",
        ).start()
        return self


class BaselineStack(Stack):
    def start(self) -> BaselineStack:
        ws = self.ws
        self.predictor = self._spawn(
            "predictor",
            [
                *("-m", "benchmarks.baseline.predictor", "--model_name", MODEL),
                *("--model_dir", str(ws.artifact)),
                *("--http_port", str(self.predictor_http), "--grpc_port", str(self.predictor_grpc)),
            ],
            f"{self.predictor_url}/v2/models/{MODEL}/ready",
            self.predictor_env,
        )
        self.transformer = self._spawn(
            "transformer",
            [
                *("-m", "benchmarks.baseline.transformer", "--model_name", MODEL),
                *("--predictor_host", f"{LOOPBACK}:{self.predictor_http}"),
                *("--predictor_protocol", "v1"),
                *("--repo", str(ws.repo)),
                *("--http_port", str(self.http), "--grpc_port", str(self.grpc)),
            ],
            f"{self.url}/v2/models/{MODEL}/ready",
            {**ws.redis_env, **self.transformer_env},
        )
        return self
