"""Fixtures for the integration tests: real processes through :mod:`berth.stack`.

``processes`` (per test) and ``module_processes`` (per module) are a :class:`berth.stack.Stack`
that stops every process started in it when its scope ends, whatever the tests did to them
(a test that restarts a server starts it again under the same role). ``redis_server`` is a
private redis-server for the session; ``artifact_copy`` a private artifact to tamper with.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from berth.stack import RedisServer, Stack


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Stack]:
    """Server processes of one test (logs in ``tmp_path/logs``), stopped after it."""
    with Stack(logs=tmp_path / "logs") as stack:
        yield stack


@pytest.fixture(scope="module")
def module_processes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Server processes shared by one module's tests, stopped after its last test."""
    with Stack(logs=tmp_path_factory.mktemp("logs")) as stack:
        yield stack


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    if not RedisServer.available():
        pytest.skip("redis-server binary not found (apt-get install redis-server)")
    server = RedisServer().start()
    yield server
    server.close()


@pytest.fixture
def artifact_copy(built: tuple[Path, Path], tmp_path: Path) -> Path:
    """A private copy of the small artifact, free to tamper with."""
    return Path(shutil.copytree(built[1], tmp_path / "artifact"))
