"""A Python server as a child process: started, polled until ready, always torn down."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path


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
