"""``berth rollout analyze --prometheus`` against a real Prometheus scraping a real stack.

Debian's ``prometheus`` (installed by ``.ci/run``) runs on a free loopback port with its own
config and data, scraping the transformer every second. The stack is ``berth up --canary``'s
(``LocalStack``): a private redis-server, the primary predictor, a canary predictor on the
same build repackaged under another version (an A/A canary: identical model, other label),
the transformer splitting 30% of customers to the canary. Customers vary, so both sides
see traffic (the split is customer-sticky).

- A/A: an identical canary is never rolled back (promote or hold).
- The canary predictor hung (SIGSTOP): the transformer's calls to it fail (504 on a timeout,
  503 once gRPC gives up on the channel), and two failing looks in a row roll it back.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from benchmarks.canary import bodies  # many customers: the split is customer-sticky
from berth.loadtest import open_loop
from berth.local import Endpoints, LocalStack
from berth.stack import PrometheusServer, free_port, repackaged_artifact

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CANARY_VERSION = "v1-aa-canary"
FRESH = shutil.ignore_patterns("registry.db", "online_store.db")
POLICY = """\
window: {window}
min_samples: 150
fail_looks: 2
pass_looks: 2
"""


@dataclass
class Lab:
    stack: LocalStack
    ep: Endpoints
    prometheus: PrometheusServer
    primary_version: str
    root: Path


@contextlib.contextmanager
def load(lab: Lab, rate: float, seconds: float) -> Iterator[dict[int, int]]:
    """Open-loop traffic in a thread for ``seconds`` while the block runs (the looks see
    live traffic); the statuses are filled in when it ends."""
    url = f"{lab.ep.http}/v1/models/{lab.ep.model}:predict"
    statuses: dict[int, int] = {}

    def send() -> None:
        run = asyncio.run(open_loop(url, None, rate, seconds, timeout_s=10, rotate=bodies(400)))
        statuses.update(run.statuses())

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    try:
        yield statuses
    finally:
        thread.join(seconds + 30)


@pytest.fixture(scope="module")
def lab(built: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    if not PrometheusServer.available():
        pytest.skip("prometheus binary not found (apt-get install prometheus)")
    from berth.artifact import read_metadata

    repo_src, artifact = built
    root = tmp_path_factory.mktemp("canary-prometheus")
    repo = Path(shutil.copytree(repo_src, root / "repo", ignore=FRESH))
    canary = repackaged_artifact(artifact, root / "canary", CANARY_VERSION)
    saved = os.environ.get("REDIS_CONNECTION_STRING")  # LocalStack sets it for Feast
    stack = LocalStack(
        artifact=artifact,
        repo=repo,
        port=free_port(),
        grpc_port=free_port(),
        canary=canary,
        canary_percent=30,
        logs=root / "logs",
    )
    prometheus: PrometheusServer | None = None
    try:
        ep = stack.start()
        prometheus = PrometheusServer([ep.http.removeprefix("http://")]).start()
        prometheus.wait_scraped()
        yield Lab(stack, ep, prometheus, read_metadata(artifact).version, root)
    finally:
        if prometheus is not None:
            prometheus.close()
        stack.stop()
        if saved is None:
            os.environ.pop("REDIS_CONNECTION_STRING", None)
        else:
            os.environ["REDIS_CONNECTION_STRING"] = saved


def analyze(lab: Lab, window: str, *extra: str) -> tuple[int, str]:
    """The real CLI in a subprocess, as a pipeline would call it."""
    policy = lab.root / f"policy-{window}.yaml"
    policy.write_text(POLICY.format(window=window))
    argv = [sys.executable, "-m", "berth.cli", "rollout", "analyze"]
    argv += ["--prometheus", lab.prometheus.url, "--policy", str(policy)]
    argv += ["--primary-version", lab.primary_version, "--canary-version", CANARY_VERSION]
    done = subprocess.run([*argv, *extra], capture_output=True, text=True, timeout=120)
    print(done.stdout, done.stderr)
    return done.returncode, done.stdout


def test_an_identical_canary_is_not_rolled_back(lab: Lab) -> None:
    with load(lab, rate=60, seconds=30) as statuses:
        time.sleep(14)
        code, out = analyze(lab, "12s", "--watch", "--interval", "3s", "--looks", "4")
    assert statuses.get(200, 0) >= 0.95 * sum(statuses.values()), statuses
    assert code in (0, 3), out  # promote or hold, never 4
    assert "look 1 " in out and f"canary {CANARY_VERSION}" in out
    canary_requests = int(out.split(f"canary {CANARY_VERSION} ")[1].split(" req")[0])
    assert canary_requests >= 150  # the split reached the canary and Prometheus saw it


def test_a_hung_canary_is_rolled_back_after_two_failing_looks(lab: Lab) -> None:
    canary = lab.stack.process("canary")
    assert canary is not None
    canary.signal(signal.SIGSTOP)
    try:
        with load(lab, rate=60, seconds=30) as statuses:
            time.sleep(14)
            code, out = analyze(lab, "12s", "--watch", "--interval", "3s", "--looks", "4")
    finally:
        canary.signal(signal.SIGCONT)
    # The canary's customers got 5xx: 504 (the call timed out) or 503 (gRPC gave up on it).
    assert sum(n for status, n in statuses.items() if status >= 500) > 0, statuses
    assert code == 4, out
    assert "failing looks 2/2" in out and "-> ROLLBACK" in out
    assert "fail         error rate: canary" in out
