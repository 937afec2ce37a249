"""Real dependencies for tests, demos and benchmarks: free ports, redis-server, server processes.

Small creator objects with ``start()``/``stop()`` (as Feast's test online stores and
BentoML's testing server do). Everything binds 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LOOPBACK = "127.0.0.1"


@contextlib.contextmanager
def patched_env(**values: str) -> Iterator[None]:
    """Set environment variables for the block, then put back what was there."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.asynccontextmanager
async def loopback_app(app: Any) -> AsyncIterator[str]:
    """An ``aiohttp.web.Application`` served on a free loopback port: its base URL, torn down
    after (a stand-in server for load-generator tests)."""
    from aiohttp import web

    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, LOOPBACK, port).start()
    try:
        yield f"http://{LOOPBACK}:{port}"
    finally:
        await runner.cleanup()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class TlsFiles:
    """A key and the self-signed certificate for 127.0.0.1 that is also its own CA."""

    cert: Path
    key: Path

    def client_params(self) -> str:
        """Feast's connection-string options for a client that trusts this certificate."""
        return f"ssl=true,ssl_ca_certs={self.cert}"


def self_signed_tls(directory: Path) -> TlsFiles:
    """A fresh EC key and a one-day self-signed certificate for 127.0.0.1 (IP SAN) in
    ``directory``, made with ``cryptography``."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "berth-test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(LOOPBACK))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    files = TlsFiles(directory / "redis.crt", directory / "redis.key")
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return files


class RedisServer:
    """A private ``redis-server`` on a free loopback port in a temp dir; no persistence.

    ``tls``: serve TLS only (on :attr:`port`); ``user``: an ACL ``(name, password)`` that is the
    only way in (the default user is off); ``args``: more ``redis-server`` options.
    """

    def __init__(
        self,
        port: int | None = None,
        tls: TlsFiles | None = None,
        user: tuple[str, str] | None = None,
        args: Sequence[str] = (),
    ) -> None:
        self.port = port or free_port()
        self.tls = tls
        self.user = user
        self.args = list(args)
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    @staticmethod
    def available() -> bool:
        return shutil.which("redis-server") is not None

    @property
    def url(self) -> str:
        return f"redis://{LOOPBACK}:{self.port}"

    @property
    def connection_string(self) -> str:
        """Feast's form of the address (with the TLS and ACL options when it has them)."""
        parts = [f"{LOOPBACK}:{self.port}"]
        if self.user:
            parts.append(f"username={self.user[0]},password={self.user[1]}")
        if self.tls:
            parts.append(self.tls.client_params())
        return ",".join(parts)

    def _command(self, directory: str) -> list[str]:
        command = ["redis-server", "--bind", LOOPBACK, "--save", "", "--appendonly", "no"]
        command += ["--dir", directory]
        if self.tls:
            command += ["--port", "0", "--tls-port", str(self.port)]
            command += ["--tls-cert-file", str(self.tls.cert), "--tls-key-file", str(self.tls.key)]
            command += ["--tls-ca-cert-file", str(self.tls.cert), "--tls-auth-clients", "no"]
        else:
            command += ["--port", str(self.port)]
        if self.user:
            name, password = self.user
            command += ["--user", name, "on", f">{password}", "~*", "&*", "+@all"]
            command += ["--user", "default", "off"]
        return command + self.args

    def start(self, timeout_s: float = 10.0) -> RedisServer:
        if self._dir is None:
            self._dir = tempfile.TemporaryDirectory(prefix="berth-redis-")
        self._proc = subprocess.Popen(
            self._command(self._dir.name), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection((LOOPBACK, self.port), 0.2):
                return self
            if self._proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self._proc.returncode}")
            time.sleep(0.05)
        raise RuntimeError(f"redis-server did not listen on {self.port}")

    def pause(self) -> None:
        """SIGSTOP: the server keeps its port and connections but answers nothing (a hang)."""
        if self._proc is not None:
            self._proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self._proc is not None:
            self._proc.send_signal(signal.SIGCONT)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def kill(self) -> None:
        """SIGKILL the server (a crash: no goodbye to clients or to the cluster)."""
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait(10)
            self._proc = None

    def stop(self) -> None:
        """Stop the server (the port stays reserved for a restart with :meth:`start`)."""
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait(10)
            self._proc = None

    def close(self) -> None:
        self.stop()
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None


class ServerProcess:
    """A Python server as a child process: started, polled until ready, always torn down."""

    def __init__(
        self,
        args: Sequence[str],
        ready_url: str,
        env: dict[str, str] | None = None,
        log_path: Path | None = None,
        cwd: Path | None = None,
        nice: int = 0,
        executable: str | None = None,
    ) -> None:
        self.args = [executable or sys.executable, *args]
        self.nice = nice  # niceness of the process and every thread it makes
        self.ready_url = ready_url
        self.env = {**os.environ, **(env or {})}
        self.log_path = log_path or Path(tempfile.mkstemp(prefix="berth-server-", suffix=".log")[1])
        self.cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ServerProcess:
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                self.args,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
                preexec_fn=(lambda: os.nice(self.nice)) if self.nice else None,
            )
        return self

    def is_ready(self) -> bool:
        try:
            with urllib.request.urlopen(self.ready_url, timeout=1) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False

    def wait_ready(self, timeout_s: float = 90.0) -> ServerProcess:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            if self.is_ready():
                return self
            time.sleep(0.1)
        raise TimeoutError(f"server not ready after {timeout_s}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)

    def stop(self, timeout_s: float = 15.0) -> int | None:
        """SIGTERM the process group, SIGKILL it if it does not exit in time."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.signal(signal.SIGKILL)
                self.proc.wait(5)
        return self.proc.returncode


def predictor_process(
    model: str,
    artifact: Path,
    ports: tuple[int, int],
    env: dict[str, str] | None = None,
    log_path: Path | None = None,
    nice: int = 0,
) -> ServerProcess:
    """``python -m berth_predictor`` serving ``artifact`` on loopback ``(http, grpc)`` ports;
    ready when the model is. Not started."""
    http, grpc = ports
    env = {"BERTH_PREDICTOR_LISTEN_HOST": LOOPBACK, **(env or {})}
    return ServerProcess(
        [
            *("-m", "berth_predictor", "--model_name", model, "--model_dir", str(artifact)),
            *("--http_port", str(http), "--grpc_port", str(grpc)),
        ],
        f"http://{LOOPBACK}:{http}/v2/models/{model}/ready",
        env=env,
        log_path=log_path,
        nice=nice,
    )


def transformer_process(
    model: str,
    predictor_host: str,
    ports: tuple[int, int],
    env: dict[str, str] | None = None,
    log_path: Path | None = None,
    predictor_protocol: str = "grpc-v2",
) -> ServerProcess:
    """``python -m berth_transformer`` in front of ``predictor_host`` (``host:port`` of its
    gRPC port, or of its HTTP port with ``predictor_protocol="v2"``) on loopback ``(http,
    grpc)`` ports; Berth's settings come in ``env``. Not started."""
    http, grpc = ports
    env = {"BERTH_TRANSFORMER_LISTEN_HOST": LOOPBACK, **(env or {})}
    return ServerProcess(
        [
            *("-m", "berth_transformer", "--model_name", model),
            *("--predictor_host", predictor_host, "--predictor_protocol", predictor_protocol),
            *("--http_port", str(http), "--grpc_port", str(grpc)),
        ],
        f"http://{LOOPBACK}:{http}/v2/models/{model}/ready",
        env=env,
        log_path=log_path,
    )


class PrometheusServer:
    """A private ``prometheus`` (Debian's package) on a free loopback port in a temp dir:
    scrapes ``targets`` (``host:port``, path ``/metrics``, with ``labels`` added) every
    ``interval`` and evaluates ``rule_files`` as often. Not the system's Prometheus: its own
    config, data and port."""

    def __init__(
        self,
        targets: Sequence[str],
        rule_files: Sequence[Path] = (),
        interval: str = "1s",
        labels: dict[str, str] | None = None,
    ) -> None:
        self.port = free_port()
        self.targets = list(targets)
        self.labels = labels or {}
        self.rule_files = [str(Path(p).resolve()) for p in rule_files]
        self.interval = interval
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    @staticmethod
    def available() -> bool:
        return shutil.which("prometheus") is not None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self, timeout_s: float = 30.0) -> PrometheusServer:
        import json

        self._dir = tempfile.TemporaryDirectory(prefix="berth-prometheus-")
        root = Path(self._dir.name)
        config = {
            "global": {"scrape_interval": self.interval, "evaluation_interval": self.interval},
            "rule_files": self.rule_files,
            "scrape_configs": [
                {
                    "job_name": "berth",
                    "static_configs": [{"targets": self.targets, "labels": self.labels}],
                }
            ],
        }
        (root / "prometheus.yml").write_text(json.dumps(config))  # JSON is YAML
        with (root / "prometheus.log").open("wb") as log:
            self._proc = subprocess.Popen(
                [
                    "prometheus",
                    f"--config.file={root / 'prometheus.yml'}",
                    f"--storage.tsdb.path={root / 'data'}",
                    f"--web.listen-address={LOOPBACK}:{self.port}",
                    "--storage.tsdb.retention.time=2h",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"prometheus exited:\n{self.log()}")
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as resp,
            ):
                if resp.status == 200:
                    return self
            time.sleep(0.2)
        raise TimeoutError(f"prometheus not ready after {timeout_s}s:\n{self.log()}")

    def log(self) -> str:
        if self._dir is None:
            return ""
        path = Path(self._dir.name) / "prometheus.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def api(self, path: str) -> Any:
        """GET ``/api/v1/<path>`` and return its ``data``."""
        import json

        with urllib.request.urlopen(f"{self.url}/api/v1/{path}", timeout=10) as resp:
            return json.loads(resp.read())["data"]

    def wait_scraped(self, timeout_s: float = 30.0) -> None:
        """Until every target has been scraped up at least once."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            active = self.api("targets")["activeTargets"]
            if len(active) == len(self.targets) and all(t["health"] == "up" for t in active):
                return
            time.sleep(0.5)
        raise TimeoutError(f"targets not scraped: {self.api('targets')}")

    def close(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            os.killpg(self._proc.pid, signal.SIGTERM)
            try:
                self._proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self._proc.pid, signal.SIGKILL)
                self._proc.wait(5)
        self._proc = None
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None


def repackaged_artifact(source: Path, target: Path, version: str) -> Path:
    """A copy of the artifact at ``source`` under another ``version`` (same model bytes,
    metadata re-signed): an A/A canary, identical to the primary but for its version label."""
    from berth.artifact import read_metadata, write_metadata

    shutil.copytree(source, target)
    write_metadata(target, read_metadata(target).model_copy(update={"version": version}))
    return target


MLFLOW_VENV = Path(__file__).resolve().parent.parent / ".venv-mlflow"


def mlflow_executable() -> str | None:
    """``$BERTH_MLFLOW``, else the ``mlflow`` of ``.venv-mlflow`` (scripts/setup.sh makes it:
    the server needs the full ``mlflow`` package, whose pins clash with the serving ones)."""
    found = os.environ.get("BERTH_MLFLOW") or str(MLFLOW_VENV / "bin" / "mlflow")
    return found if os.access(found, os.X_OK) else None


def mlflow_server_process(root: Path, port: int | None = None) -> tuple[ServerProcess, str]:
    """``mlflow server`` on a free loopback port, its SQLite backend and artifact store under
    ``root``; (process, tracking URI). Not started."""
    executable = mlflow_executable()
    if executable is None:
        raise RuntimeError("no mlflow server: run scripts/setup.sh (it makes .venv-mlflow)")
    port = port or free_port()
    root.mkdir(parents=True, exist_ok=True)
    args = [
        *("server", "--host", LOOPBACK, "--port", str(port), "--workers", "1"),
        *("--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}"),
        *("--artifacts-destination", str(root / "artifacts")),
    ]
    url = f"http://{LOOPBACK}:{port}"
    process = ServerProcess(
        args, f"{url}/health", log_path=root / "mlflow.log", executable=executable
    )
    return process, url
