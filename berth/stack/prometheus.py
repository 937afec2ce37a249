"""A private Prometheus on loopback that scrapes local servers (canary benchmark and tests)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from berth.stack.ports import LOOPBACK, free_port


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
