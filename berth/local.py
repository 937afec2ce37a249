"""Local mode: ``berth up`` and ``berth demo`` run the containers' entrypoints on loopback.

``berth up`` builds the artifact if absent (``berth build``), applies the Feast repo,
materializes its features into an online store -- the Redis at ``--redis URL`` or the Redis
Cluster at ``--redis-cluster NODES`` (Feast's connection string); else a private
``redis-server`` on a free port when the binary exists; else Feast's SQLite store, saying so --
starts ``python -m berth_predictor`` and ``python -m berth_transformer`` as child processes,
waits until both are ready, prints how to call them and stops everything on Ctrl-C / SIGTERM.
``berth demo`` does the same, sends real ranking requests, prints the ranked drivers and exits.
Their arguments, what they print and the demo's requests are in :mod:`berth.cli`.

The feature repo defaults to the project's ``feature_repo/`` with its data in
``feature_repo/data/`` (gitignored), the one ``berth build`` uses; logs go to ``.berth/logs/``.
feast is imported only by the commands (it takes seconds to import).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from berth.artifact import DEFAULT_ARTIFACT
from berth.errors import BerthError
from berth.stack import (
    LOOPBACK,
    READY_TIMEOUT_S,
    NotReady,
    RedisServer,
    ServerProcess,
    Stack,
    feature_env,
    free_port,
    port_is_free,
    predictor_process,
    transformer_process,
)

STATE_DIR = Path(".berth")
# Every local server on loopback only (KServe binds every interface), with gRPC reflection.
LOCAL_ENV = {
    role: {f"BERTH_{role}_LISTEN_HOST": LOOPBACK, f"BERTH_{role}_GRPC_REFLECTION": "true"}
    for role in ("PREDICTOR", "TRANSFORMER")
}
SHADOW_NICE = 10  # the shadow predictor's niceness in local mode


class LocalModeError(BerthError):
    """Local mode could not start (the message says what to do)."""


@dataclass(frozen=True)
class Endpoints:
    model: str
    version: str
    feature_service: str
    http: str
    grpc: str
    predictor_http: str
    predictor_grpc: str
    online_store: str
    canary: str | None = None  # the canary predictor's host:port (transformer protocol)
    shadow: str | None = None  # the shadow predictor's host:port


@dataclass
class LocalStack:
    """The processes of local mode, started in order and stopped in reverse."""

    artifact: Path
    repo: Path
    port: int
    grpc_port: int
    redis_url: str | None = None
    redis_cluster: str | None = None  # Feast's "host:port,host:port[,password=..,ssl=true]"
    online_store: str | None = None  # "sqlite" forces the embedded store
    predictor_protocol: str = "v2"
    data_args: list[str] = field(default_factory=list)
    canary: Path | None = None  # a second artifact (same FeatureService) for a canary
    canary_percent: float = 0.0
    canary_env: dict[str, str] = field(default_factory=dict)  # extra env of the canary only
    shadow: Path | None = None  # an artifact for the shadow predictor
    build: bool = False  # build a missing artifact that is not the default one
    logs: Path = STATE_DIR / "logs"
    echo: Callable[[str], None] = print
    _redis: RedisServer | None = None
    _servers: Stack | None = None

    def start(self) -> Endpoints:
        """Build (if needed), materialize, start predictor and transformer, wait for both."""
        for port in (self.port, self.grpc_port):
            if not port_is_free(port):
                raise LocalModeError(f"port {port} is in use: pass another --port / --grpc-port")
        meta = self._ensure_artifact()
        servers = self._servers = Stack(self.logs)
        predictor_http, predictor_grpc = free_port(), free_port()
        servers.start(
            "predictor",
            predictor_process(
                meta.name,
                self.artifact,
                (predictor_http, predictor_grpc),
                env=LOCAL_ENV["PREDICTOR"],
                log_path=servers.log_path("predictor"),
            ),
        )
        extra = self._extra_predictors(servers, meta.name)
        yaml_file, redis, store_label = self._online_store()
        self._materialize(yaml_file, redis)
        predictor_host = predictor_grpc if self.predictor_protocol == "grpc-v2" else predictor_http
        env = {
            **LOCAL_ENV["TRANSFORMER"],
            **feature_env(self.repo, self.artifact, redis, yaml_file),
            "BERTH_TRANSFORMER_FEATURE_SERVICE": meta.feature_service,
            **extra,
        }
        servers.start(
            "transformer",
            transformer_process(
                meta.name,
                f"{LOOPBACK}:{predictor_host}",
                (self.port, self.grpc_port),
                env=env,
                log_path=servers.log_path("transformer"),
                predictor_protocol=self.predictor_protocol,
            ),
        )
        self.echo("waiting for predictor and transformer to be ready ...")
        try:
            servers.wait_ready(READY_TIMEOUT_S)
        except NotReady as exc:
            raise LocalModeError(str(exc)) from None
        return Endpoints(
            model=meta.name,
            version=meta.version,
            feature_service=meta.feature_service,
            http=f"http://{LOOPBACK}:{self.port}",
            grpc=f"{LOOPBACK}:{self.grpc_port}",
            predictor_http=f"http://{LOOPBACK}:{predictor_http}",
            predictor_grpc=f"{LOOPBACK}:{predictor_grpc}",
            online_store=store_label,
            canary=extra.get("BERTH_TRANSFORMER_CANARY_HOST"),
            shadow=extra.get("BERTH_TRANSFORMER_SHADOW_HOST"),
        )

    def _extra_predictors(self, servers: Stack, model_name: str) -> dict[str, str]:
        """Canary / shadow predictors (``--canary DIR``, ``--shadow DIR``) under the primary's
        model name, started; the transformer settings pointing at them."""
        from berth.artifact import read_metadata

        env: dict[str, str] = {}
        roles = (("canary", self.canary), ("shadow", self.shadow))
        for role, artifact in roles:
            if artifact is None:
                continue
            if not (artifact / "metadata.json").exists():
                raise LocalModeError(f"--{role} {artifact}: no artifact there (`berth build`)")
            http, grpc = free_port(), free_port()
            # One machine: the shadow's CPU must not slow the primary.
            servers.start(
                role,
                predictor_process(
                    model_name,
                    artifact,
                    (http, grpc),
                    env={**LOCAL_ENV["PREDICTOR"], **(self.canary_env if role == "canary" else {})},
                    log_path=servers.log_path(role),
                    nice=SHADOW_NICE if role == "shadow" else 0,
                ),
            )
            port = grpc if self.predictor_protocol == "grpc-v2" else http
            env[f"BERTH_TRANSFORMER_{role.upper()}_HOST"] = f"{LOOPBACK}:{port}"
            version = read_metadata(artifact).version
            self.echo(f"{role} predictor: {artifact} (version {version}) on {LOOPBACK}:{port}")
        if self.canary is not None:
            env["BERTH_TRANSFORMER_CANARY_PERCENT"] = str(self.canary_percent)
        return env

    def _ensure_artifact(self) -> Any:
        from berth.artifact import read_metadata

        if not (self.artifact / "metadata.json").exists():
            if not (self.build or self.artifact == DEFAULT_ARTIFACT.resolve()):
                raise LocalModeError(
                    f"no artifact at {self.artifact}: check the path, or pass --build to "
                    "build one there (takes a minute)"
                )
            self.echo(f"no artifact at {self.artifact}: running `berth build` (takes a minute)")
            cmd = [sys.executable, "-m", "berth.cli", "build", "--repo", str(self.repo)]
            cmd += ["--output", str(self.artifact), *self.data_args]
            if subprocess.run(cmd, check=False).returncode != 0:
                raise LocalModeError("`berth build` failed (see its output above)")
        return read_metadata(self.artifact)

    def _online_store(self) -> tuple[Path, str | None, str]:
        """The online store: its ``feature_store*.yaml``, Redis connection string (``None``
        for SQLite) and what ``berth up`` calls it; a private redis-server is started here."""
        from berth.featurerepo import (
            CLUSTER_YAML,
            REDIS_YAML,
            SQLITE_YAML,
            redis_connection_string,
        )

        if self.online_store == "sqlite":
            return self.repo / SQLITE_YAML, None, "Feast SQLite (embedded)"
        if self.redis_cluster:
            nodes = ",".join(p for p in self.redis_cluster.split(",") if "=" not in p)
            return self.repo / CLUSTER_YAML, self.redis_cluster, f"Redis Cluster {nodes}"
        if self.redis_url:
            conn = redis_connection_string(self.redis_url)
            return self.repo / REDIS_YAML, conn, self.redis_url
        if RedisServer.available():
            self._redis = RedisServer().start()
            label = f"{self._redis.url} (private redis-server)"
            return self.repo / REDIS_YAML, self._redis.connection_string, label
        self.echo(
            "redis-server not found: using Feast's SQLite online store (data/online_store.db)"
        )
        return self.repo / SQLITE_YAML, None, "Feast SQLite (embedded; no redis-server found)"

    def _materialize(self, yaml_file: Path, redis: str | None) -> None:
        """``feast apply`` + materialize every view's latest rows up to now (Feast's own
        output goes to ``<logs>/materialize.log``)."""
        if redis is not None:  # Feast's yaml reads it: ${REDIS_CONNECTION_STRING}
            os.environ["REDIS_CONNECTION_STRING"] = redis
        self.echo(f"applying {self.repo} and materializing features ({yaml_file.name}) ...")
        started = time.monotonic()
        log_path = self.logs / "materialize.log"
        with (
            log_path.open("w") as log,
            warnings.catch_warnings(),
            contextlib.redirect_stdout(log),
            contextlib.redirect_stderr(log),
        ):
            warnings.simplefilter("ignore")
            try:
                from berth.featurerepo import materialize_latest

                materialize_latest(self.repo, yaml_file)
            except Exception as exc:
                raise LocalModeError(
                    f"could not materialize into the online store: {type(exc).__name__}: "
                    f"{exc} (Feast's output: {log_path})"
                ) from exc
        self.echo(f"features online in {time.monotonic() - started:.1f}s")

    def process(self, name: str) -> ServerProcess | None:
        """The child named ``name`` (predictor, canary, shadow, transformer), if started."""
        return None if self._servers is None else self._servers.get(name)

    def failed(self) -> str | None:
        """The name of a child that exited on its own, if any."""
        return None if self._servers is None else self._servers.failed()

    def stop(self) -> None:
        if self._servers is not None:
            self._servers.stop()
        if self._redis is not None:
            self._redis.close()
            self._redis = None


@contextlib.contextmanager
def stopping_on_signals() -> Iterator[None]:
    """Turn SIGTERM (and SIGINT) into KeyboardInterrupt so ``finally`` blocks stop the stack."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
