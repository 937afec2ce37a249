"""A predictor and a transformer on free loopback ports, started and stopped as one."""

from __future__ import annotations

from pathlib import Path
from typing import Self

from berth.stack.group import READY_TIMEOUT_S, Stack
from berth.stack.ports import Ports
from berth.stack.process import ServerProcess
from berth.stack.roles import predictor_process, transformer_process


class ServingPair:
    """``predictor`` and ``transformer`` on free :class:`Ports`, in one :class:`Stack`.

    :meth:`start` starts Berth's own (``python -m berth_predictor``, then ``python -m
    berth_transformer`` calling it over ``hop``: ``grpc-v2`` to its gRPC port, ``v1``/``v2`` to
    its REST port); a subclass may start others under the same roles. Logs go to
    ``logs/<name>-<role>.log`` (``logs/<role>.log`` without a name). :meth:`stop` stops both,
    the transformer first; ``with pair:`` is :meth:`start`, then always :meth:`stop`.
    """

    def __init__(
        self,
        model: str,
        artifact: Path,
        logs: Path,
        name: str = "",
        hop: str = "grpc-v2",
        predictor_env: dict[str, str] | None = None,
        transformer_env: dict[str, str] | None = None,
    ) -> None:
        self.model, self.artifact, self.logs, self.name, self.hop = model, artifact, logs, name, hop
        self.predictor_env = predictor_env or {}
        self.transformer_env = transformer_env or {}
        self.predictor_ports, self.transformer_ports = Ports.free(), Ports.free()
        self.processes = Stack()

    @property
    def predictor(self) -> ServerProcess | None:
        return self.processes.get("predictor")

    @property
    def transformer(self) -> ServerProcess | None:
        return self.processes.get("transformer")

    @property
    def url(self) -> str:
        """The transformer's REST base URL (where clients call)."""
        return self.transformer_ports.url

    @property
    def grpc_target(self) -> str:
        """The transformer's gRPC ``host:port``."""
        return self.transformer_ports.grpc_target

    @property
    def predictor_url(self) -> str:
        return self.predictor_ports.url

    @property
    def infer_url(self) -> str:
        """The transformer's V1 ``:predict`` URL."""
        return f"{self.url}/v1/models/{self.model}:predict"

    def log_path(self, role: str) -> Path:
        self.logs.mkdir(parents=True, exist_ok=True)
        return self.logs / (f"{self.name}-{role}.log" if self.name else f"{role}.log")

    def pids(self) -> dict[str, int]:
        """Role -> pid of each running process, the transformer first."""
        return dict(reversed(self.processes.pids().items()))

    def feature_env(self) -> dict[str, str]:
        """The transformer's feature settings (:func:`~berth.stack.feature_env`); a subclass
        names its repo and online store."""
        raise NotImplementedError

    def transformer_env_for(self, **extra: str) -> dict[str, str]:
        """A Berth transformer's environment: :meth:`feature_env`, then ``transformer_env``
        and ``extra``."""
        return {**self.feature_env(), **self.transformer_env, **extra}

    def start(self) -> Self:
        """Start the predictor and the transformer (not waiting for them)."""
        self.start_predictor()
        self.start_transformer()
        return self

    def start_predictor(self) -> ServerProcess:
        return self.processes.start(
            "predictor",
            predictor_process(
                self.model,
                self.artifact,
                self.predictor_ports,
                env=self.predictor_env,
                log_path=self.log_path("predictor"),
            ),
        )

    def start_transformer(self) -> ServerProcess:
        return self.processes.start(
            "transformer",
            transformer_process(
                self.model,
                self.predictor_ports.hop_target(self.hop),
                self.transformer_ports,
                env=self.transformer_env_for(),
                log_path=self.log_path("transformer"),
                predictor_protocol=self.hop,
            ),
        )

    def wait_ready(self, timeout_s: float = READY_TIMEOUT_S) -> Self:
        self.processes.wait_ready(timeout_s)
        return self

    def stop(self) -> None:
        self.processes.stop()

    def __enter__(self) -> Self:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()
