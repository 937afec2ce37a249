"""A whole serving stack for tests: a private redis-server (or a running Redis Cluster), the
predictor and the transformer (gRPC V2 between them) on loopback, from a built feature repo
and artifact, through :mod:`berth.stack`."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Self

from berth.loadtest import MODEL
from berth.stack import (
    LOOPBACK,
    RedisClusterServers,
    RedisServer,
    ServingPair,
    feature_env,
    materialize,
)

READY_TIMEOUT_S = 120.0


class ServingStack(ServingPair):
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
        super().__init__(
            MODEL, artifact, root, predictor_env=predictor_env, transformer_env=transformer_env
        )
        self.cluster = redis_cluster  # a running Redis Cluster to use instead of redis-server
        self.repo = Path(
            shutil.copytree(
                repo, root / "repo", ignore=shutil.ignore_patterns("registry.db", "online_store.db")
            )
        )
        self.redis = RedisServer()

    @property
    def connection_string(self) -> str:
        return self.cluster.connection_string if self.cluster else self.redis.connection_string

    @property
    def store_yaml(self) -> Path:
        from berth.featurerepo import CLUSTER_YAML, REDIS_YAML

        return self.repo / (CLUSTER_YAML if self.cluster else REDIS_YAML)

    def feature_env(self) -> dict[str, str]:
        return feature_env(self.repo, self.artifact, self.connection_string, self.store_yaml)

    def start(self) -> Self:
        if self.cluster is None:
            self.redis.start()
        self.start_predictor()
        self.materialize()
        self.start_transformer()
        return self.wait_ready(READY_TIMEOUT_S)

    def materialize(self) -> None:
        """Apply the repo and put every entity's latest row into this Redis (or cluster)."""
        materialize(self.repo, self.connection_string, self.store_yaml)

    def save_redis(self) -> None:
        """Snapshot Redis to its dir: a restart on the same port comes back with the data."""
        import redis

        redis.Redis(host=LOOPBACK, port=self.redis.port).save()

    def stop(self) -> None:
        super().stop()
        self.redis.close()
