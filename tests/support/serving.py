"""A whole serving stack for tests: a private redis-server (or a running Redis Cluster), the
predictor and the transformer (gRPC V2 between them) on loopback, from a built feature repo
and artifact, through :mod:`berth.stack`."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from unittest import mock

from berth.loadtest import MODEL
from berth.stack import (
    LOOPBACK,
    Ports,
    RedisClusterServers,
    RedisServer,
    ServerProcess,
    Stack,
    feature_env,
    predictor_process,
    transformer_process,
)

READY_TIMEOUT_S = 120.0


class ServingStack:
    """redis-server (or ``redis_cluster``) + predictor + transformer; a context manager."""

    def __init__(
        self,
        repo: Path,
        artifact: Path,
        root: Path,
        transformer_env: dict[str, str] | None = None,
        predictor_env: dict[str, str] | None = None,
        redis_cluster: RedisClusterServers | None = None,
    ) -> None:
        self.root = root
        self.cluster = redis_cluster  # a running Redis Cluster to use instead of redis-server
        self.repo = Path(
            shutil.copytree(
                repo, root / "repo", ignore=shutil.ignore_patterns("registry.db", "online_store.db")
            )
        )
        self.artifact = artifact
        self.transformer_env = transformer_env or {}
        self.predictor_env = predictor_env or {}
        self.redis = RedisServer()
        self.predictor_ports = Ports.free()
        self.transformer_ports = Ports.free()
        self.processes = Stack(logs=root)

    @property
    def predictor(self) -> ServerProcess | None:
        return self.processes.get("predictor")

    @property
    def transformer(self) -> ServerProcess | None:
        return self.processes.get("transformer")

    @property
    def url(self) -> str:
        return self.transformer_ports.url

    @property
    def predictor_url(self) -> str:
        return self.predictor_ports.url

    @property
    def infer_url(self) -> str:
        return f"{self.url}/v1/models/{MODEL}:predict"

    def __enter__(self) -> ServingStack:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def connection_string(self) -> str:
        return self.cluster.connection_string if self.cluster else self.redis.connection_string

    @property
    def store_yaml(self) -> Path:
        from berth.featurerepo import CLUSTER_YAML, REDIS_YAML

        return self.repo / (CLUSTER_YAML if self.cluster else REDIS_YAML)

    def start(self) -> ServingStack:
        if self.cluster is None:
            self.redis.start()
        self.start_predictor()
        self.materialize()
        self.start_transformer()
        self.processes.wait_ready(READY_TIMEOUT_S)
        return self

    def start_predictor(self) -> ServerProcess:
        return self.processes.start(
            "predictor",
            predictor_process(
                MODEL,
                self.artifact,
                self.predictor_ports,
                env=self.predictor_env,
                log_path=self.processes.log_path("predictor"),
            ),
        )

    def start_transformer(self) -> ServerProcess:
        env = {
            **feature_env(self.repo, self.artifact, self.connection_string, self.store_yaml),
            **self.transformer_env,
        }
        return self.processes.start(
            "transformer",
            transformer_process(
                MODEL,
                self.predictor_ports.grpc_target,
                self.transformer_ports,
                env=env,
                log_path=self.processes.log_path("transformer"),
            ),
        )

    def materialize(self) -> None:
        """Apply the repo and put every entity's latest row into this Redis (or cluster)."""
        from berth.featurerepo import materialize_latest

        with mock.patch.dict(os.environ, {"REDIS_CONNECTION_STRING": self.connection_string}):
            materialize_latest(self.repo, self.store_yaml)

    def save_redis(self) -> None:
        """Snapshot Redis to its dir: a restart on the same port comes back with the data."""
        import redis

        redis.Redis(host=LOOPBACK, port=self.redis.port).save()

    def stop(self) -> None:
        self.processes.stop()
        self.redis.close()
