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
import socket
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
    RedisServer,
    ServerProcess,
    free_port,
    predictor_process,
    transformer_process,
)

STATE_DIR = Path(".berth")
# Every local server on loopback only (KServe binds every interface), with gRPC reflection.
LOCAL_ENV = {
    role: {f"BERTH_{role}_LISTEN_HOST": LOOPBACK, f"BERTH_{role}_GRPC_REFLECTION": "true"}
    for role in ("PREDICTOR", "TRANSFORMER")
}
READY_TIMEOUT_S = 180.0
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
    predictor_protocol: str = "grpc-v2"
    data_args: list[str] = field(default_factory=list)
    canary: Path | None = None  # a second artifact (same FeatureService) for a canary
    canary_percent: float = 0.0
    canary_env: dict[str, str] = field(default_factory=dict)  # extra env of the canary only
    shadow: Path | None = None  # an artifact for the shadow predictor
    build: bool = False  # build a missing artifact that is not the default one
    logs: Path = STATE_DIR / "logs"
    echo: Callable[[str], None] = print
    _redis: RedisServer | None = None
    _procs: list[ServerProcess] = field(default_factory=list)

    def start(self) -> Endpoints:
        """Build (if needed), materialize, start predictor and transformer, wait for both."""
        for port in (self.port, self.grpc_port):
            _check_port_free(port)
        meta = self._ensure_artifact()
        self.logs.mkdir(parents=True, exist_ok=True)
        predictor_http, predictor_grpc = free_port(), free_port()
        predictor = self._spawn(
            predictor_process(
                meta.name,
                self.artifact,
                (predictor_http, predictor_grpc),
                env=LOCAL_ENV["PREDICTOR"],
                log_path=self.logs / "predictor.log",
            )
        )
        extra = self._extra_predictors(meta.name)
        yaml_file, store_env, store_label = self._online_store()
        self._materialize(yaml_file, store_env)
        predictor_host = predictor_grpc if self.predictor_protocol == "grpc-v2" else predictor_http
        env = {
            **LOCAL_ENV["TRANSFORMER"],
            **store_env,
            "BERTH_TRANSFORMER_FEATURE_REPO": str(self.repo),
            "BERTH_TRANSFORMER_FEATURE_STORE_YAML": str(yaml_file),
            "BERTH_TRANSFORMER_FEATURE_SERVICE": meta.feature_service,
            "BERTH_TRANSFORMER_MODEL_METADATA": str(self.artifact / "metadata.json"),
            **extra.env,
        }
        transformer = self._spawn(
            transformer_process(
                meta.name,
                f"{LOOPBACK}:{predictor_host}",
                (self.port, self.grpc_port),
                env=env,
                log_path=self.logs / "transformer.log",
                predictor_protocol=self.predictor_protocol,
            )
        )
        self.echo("waiting for predictor and transformer to be ready ...")
        for name, proc in (("predictor", predictor), *extra.procs, ("transformer", transformer)):
            self._wait(name, proc)
        return Endpoints(
            model=meta.name,
            version=meta.version,
            feature_service=meta.feature_service,
            http=f"http://{LOOPBACK}:{self.port}",
            grpc=f"{LOOPBACK}:{self.grpc_port}",
            predictor_http=f"http://{LOOPBACK}:{predictor_http}",
            predictor_grpc=f"{LOOPBACK}:{predictor_grpc}",
            online_store=store_label,
            canary=extra.env.get("BERTH_TRANSFORMER_CANARY_HOST"),
            shadow=extra.env.get("BERTH_TRANSFORMER_SHADOW_HOST"),
        )

    def _extra_predictors(self, model_name: str) -> _Extra:
        """Canary / shadow predictors (``--canary DIR``, ``--shadow DIR``) under the primary's
        model name, and the transformer settings pointing at them."""
        from berth.artifact import read_metadata

        extra = _Extra()
        roles = (("canary", self.canary), ("shadow", self.shadow))
        for role, artifact in roles:
            if artifact is None:
                continue
            if not (artifact / "metadata.json").exists():
                raise LocalModeError(f"--{role} {artifact}: no artifact there (`berth build`)")
            http, grpc = free_port(), free_port()
            # One machine: the shadow's CPU must not slow the primary.
            proc = self._spawn(
                predictor_process(
                    model_name,
                    artifact,
                    (http, grpc),
                    env={**LOCAL_ENV["PREDICTOR"], **(self.canary_env if role == "canary" else {})},
                    log_path=self.logs / f"{role}.log",
                    nice=SHADOW_NICE if role == "shadow" else 0,
                )
            )
            port = grpc if self.predictor_protocol == "grpc-v2" else http
            extra.env[f"BERTH_TRANSFORMER_{role.upper()}_HOST"] = f"{LOOPBACK}:{port}"
            extra.procs.append((role, proc))
            version = read_metadata(artifact).version
            self.echo(f"{role} predictor: {artifact} (version {version}) on {LOOPBACK}:{port}")
        if self.canary is not None:
            extra.env["BERTH_TRANSFORMER_CANARY_PERCENT"] = str(self.canary_percent)
        return extra

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

    def _online_store(self) -> tuple[Path, dict[str, str], str]:
        from berth.featurerepo import (
            CLUSTER_YAML,
            REDIS_YAML,
            SQLITE_YAML,
            redis_connection_string,
        )

        if self.online_store == "sqlite":
            return self.repo / SQLITE_YAML, {}, "Feast SQLite (embedded)"
        if self.redis_cluster:
            nodes = ",".join(p for p in self.redis_cluster.split(",") if "=" not in p)
            env = {"REDIS_CONNECTION_STRING": self.redis_cluster}
            return self.repo / CLUSTER_YAML, env, f"Redis Cluster {nodes}"
        if self.redis_url:
            conn = redis_connection_string(self.redis_url)
            return self.repo / REDIS_YAML, {"REDIS_CONNECTION_STRING": conn}, self.redis_url
        if RedisServer.available():
            self._redis = RedisServer().start()
            label = f"{self._redis.url} (private redis-server)"
            env = {"REDIS_CONNECTION_STRING": self._redis.connection_string}
            return self.repo / REDIS_YAML, env, label
        self.echo(
            "redis-server not found: using Feast's SQLite online store (data/online_store.db)"
        )
        return self.repo / SQLITE_YAML, {}, "Feast SQLite (embedded; no redis-server found)"

    def _materialize(self, yaml_file: Path, env: dict[str, str]) -> None:
        """``feast apply`` + materialize every view's latest rows up to now (Feast's own
        output goes to ``<logs>/materialize.log``)."""
        os.environ.update(env)
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

    def _spawn(self, proc: ServerProcess) -> ServerProcess:
        """Start ``proc``; :meth:`stop` stops it with the others."""
        self._procs.append(proc.start())
        return proc

    def _wait(self, name: str, proc: ServerProcess) -> None:
        try:
            proc.wait_ready(READY_TIMEOUT_S)
        except (RuntimeError, TimeoutError):
            tail = "\n".join(proc.log().splitlines()[-15:])
            raise LocalModeError(
                f"{name} did not start; last lines of {proc.log_path}:\n{tail}"
            ) from None

    def process(self, name: str) -> ServerProcess | None:
        """The child named ``name`` (predictor, canary, shadow, transformer), if started."""
        return next((p for p in self._procs if Path(p.log_path).stem == name), None)

    def failed(self) -> str | None:
        """The name of a child that exited on its own, if any."""
        for proc in self._procs:
            if proc.proc is not None and proc.proc.poll() is not None:
                return Path(proc.log_path).stem
        return None

    def stop(self) -> None:
        for proc in reversed(self._procs):
            proc.stop()
        self._procs.clear()
        if self._redis is not None:
            self._redis.close()
            self._redis = None


@dataclass
class _Extra:
    env: dict[str, str] = field(default_factory=dict)
    procs: list[tuple[str, ServerProcess]] = field(default_factory=list)


def _check_port_free(port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            raise LocalModeError(
                f"port {port} is in use: pass another --port / --grpc-port"
            ) from None


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
