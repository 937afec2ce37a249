"""A private ``redis-server`` on a free loopback port (the online store of ``berth up``, the
benchmarks and the tests)."""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from berth.stack.ports import LOOPBACK, free_port


@dataclass(frozen=True)
class TlsFiles:
    """A key and the self-signed certificate for 127.0.0.1 that is also its own CA."""

    cert: Path
    key: Path

    def client_params(self) -> str:
        """Feast's connection-string options for a client that trusts this certificate."""
        return f"ssl=true,ssl_ca_certs={self.cert}"


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
