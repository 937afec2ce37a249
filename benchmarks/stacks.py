"""The two serving stacks under test, started through their real entrypoints on loopback.

* :class:`BerthStack` -- ``python -m berth_predictor`` (int8, adaptive batching) and
  ``python -m berth_transformer`` (direct Redis read, REST V2 to the predictor).
* :class:`BaselineStack` -- ``python -m benchmarks.baseline.predictor`` (fp32, sync, no
  batching) and ``python -m benchmarks.baseline.transformer`` (sync Feast SDK read on the loop,
  KServe's REST V1 client to the predictor).

Both read the same :class:`~benchmarks.workspace.Workspace` (feature repo, Redis, artifact).
"""

from __future__ import annotations

from pathlib import Path
from typing import Self

from benchmarks.payloads import MODEL
from benchmarks.workspace import Workspace
from berth.stack import LOOPBACK, ServerProcess, ServingPair, feature_env

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class WorkspacePair(ServingPair):
    """A :class:`~berth.stack.ServingPair` named ``name`` over ``ws``'s artifact, logging to
    ``logs/<name>-<role>.log``; :meth:`stop` always tears both down."""

    def __init__(
        self,
        name: str,
        ws: Workspace,
        logs: Path,
        predictor_env: dict[str, str] | None = None,
        transformer_env: dict[str, str] | None = None,
    ) -> None:
        super().__init__(  # a Berth transformer's hop is the shipped default: REST V2
            MODEL, ws.artifact, logs, name, "v2", predictor_env, transformer_env
        )
        self.ws = ws


class BerthStack(WorkspacePair):
    def feature_env(self) -> dict[str, str]:
        ws = self.ws
        return feature_env(ws.repo, ws.artifact, ws.redis.connection_string)


class BaselineStack(WorkspacePair):
    def start(self) -> Self:
        ws, (p_http, p_grpc), (http, grpc) = self.ws, self.predictor_ports, self.transformer_ports
        self._spawn(
            "predictor",
            [
                *("-m", "benchmarks.baseline.predictor", "--model_name", MODEL),
                *("--model_dir", str(ws.artifact)),
                *("--http_port", str(p_http), "--grpc_port", str(p_grpc)),
            ],
            f"{self.predictor_url}/v2/models/{MODEL}/ready",
            self.predictor_env,
        )
        self._spawn(
            "transformer",
            [
                *("-m", "benchmarks.baseline.transformer", "--model_name", MODEL),
                *("--predictor_host", f"{LOOPBACK}:{p_http}", "--predictor_protocol", "v1"),
                *("--repo", str(ws.repo)),
                *("--http_port", str(http), "--grpc_port", str(grpc)),
            ],
            f"{self.url}/v2/models/{MODEL}/ready",
            {**ws.redis_env, **self.transformer_env},
        )
        return self

    def _spawn(self, role: str, args: list[str], ready: str, env: dict[str, str]) -> ServerProcess:
        proc = ServerProcess(args, ready, env=env, log_path=self.log_path(role), cwd=PROJECT_ROOT)
        return self.processes.start(role, proc)
