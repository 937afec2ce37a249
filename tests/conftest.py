"""Shared fixtures: a small artifact built by the real `berth build`, a real redis-server."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from berth.stack import RedisClusterServers, RedisServer
from tests.support.serving import ServingStack

SMALL_DATA = ["--drivers", "40", "--customers", "120", "--days", "3", "--rides", "6000"]


def build_artifact(repo: Path, output: Path, service: str = "driver_ranking_v1") -> Path:
    """Copy the feature repo to ``repo`` and run the real build on small data."""
    from berth.cli import main
    from berth.featurerepo import copy_repo

    copy_repo(repo)
    code = main(
        [
            "build",
            "--repo",
            str(repo),
            "--output",
            str(output),
            "--feature-service",
            service,
            *SMALL_DATA,
        ]
    )
    assert code == 0
    return output


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(feature repo with data, artifact dir) from one small `berth build`, shared read-only."""
    root = tmp_path_factory.mktemp("built")
    artifact = build_artifact(root / "feature_repo", root / "artifact")
    return root / "feature_repo", artifact


@pytest.fixture
def artifact_copy(built: tuple[Path, Path], tmp_path: Path) -> Path:
    """A private copy of the small artifact, free to tamper with."""
    return Path(shutil.copytree(built[1], tmp_path / "artifact"))


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    if not RedisServer.available():
        pytest.skip("redis-server binary not found (apt-get install redis-server)")
    server = RedisServer().start()
    yield server
    server.close()


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisClusterServers]:
    """A real 6-node Redis Cluster (3 masters, 1 replica each) on loopback, shared; a test
    that kills a node starts its own."""
    if not RedisClusterServers.available():
        pytest.skip("redis-server/redis-cli not found (apt-get install redis-server)")
    cluster = RedisClusterServers().start()
    yield cluster
    cluster.close()


@pytest.fixture(scope="session")
def serving_stack(
    built: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
) -> Callable[..., contextlib.AbstractContextManager[ServingStack]]:
    """``with serving_stack("name", transformer_env=...) as stack``: redis-server, predictor and
    transformer from the small build, started and always stopped (skips without redis-server)."""

    @contextlib.contextmanager
    def start(name: str, **settings: Any) -> Iterator[ServingStack]:
        if not RedisServer.available():
            pytest.skip("redis-server binary not found (apt-get install redis-server)")
        with ServingStack(built[0], built[1], tmp_path_factory.mktemp(name), **settings) as stack:
            yield stack

    return start
