"""Load for reliability tests and benchmarks: closed- and open-loop senders, one serving stack.

:func:`closed_loop` finds what a server sustains (``concurrency`` clients back to back);
:func:`open_loop` sends at a fixed rate whatever the answers do (what overload looks like in
production). :class:`ServingStack` starts a private redis-server, ``python -m berth_predictor``
and ``python -m berth_transformer`` on loopback from a built feature repo and artifact.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from berth.testing import LOOPBACK, RedisServer, ServerProcess, free_port

MODEL = "driver-ranking"
ERROR = 0  # status of a request that got no HTTP answer (connection error, client timeout)


@dataclass(frozen=True)
class Sample:
    sent: float  # monotonic time the request left
    latency: float  # seconds to the answer (or to the failure)
    status: int  # HTTP status, or ERROR
    error: str = ""


@dataclass
class Run:
    samples: list[Sample] = field(default_factory=list)
    seconds: float = 0.0

    def count(self, *statuses: int) -> int:
        return sum(1 for s in self.samples if s.status in statuses)

    def statuses(self) -> dict[int, int]:
        out: dict[int, int] = {}
        for s in self.samples:
            out[s.status] = out.get(s.status, 0) + 1
        return dict(sorted(out.items()))

    def rate(self, status: int = 200) -> float:
        return self.count(status) / self.seconds if self.seconds else 0.0

    def latency(self, q: float, *statuses: int) -> float:
        values = sorted(s.latency for s in self.samples if not statuses or s.status in statuses)
        return values[min(len(values) - 1, int(q * len(values)))] if values else 0.0


async def _one(session: Any, url: str, body: bytes, timeout_s: float) -> Sample:
    import aiohttp

    sent = time.monotonic()
    try:
        async with session.post(
            url,
            data=body,
            headers={"content-type": "application/json"},
            timeout=aiohttp.ClientTimeout(total=timeout_s),
        ) as resp:
            await resp.read()
            return Sample(sent, time.monotonic() - sent, resp.status)
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        return Sample(sent, time.monotonic() - sent, ERROR, type(exc).__name__)


async def closed_loop(
    url: str, payload: object, concurrency: int, seconds: float, timeout_s: float = 10.0
) -> Run:
    """``concurrency`` clients, each sending its next request when the last one is answered."""
    import aiohttp

    body, run = json.dumps(payload).encode(), Run()
    stop = time.monotonic() + seconds

    async def client(session: aiohttp.ClientSession) -> None:
        while time.monotonic() < stop:
            run.samples.append(await _one(session, url, body, timeout_s))

    started = time.monotonic()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        await asyncio.gather(*(client(session) for _ in range(concurrency)))
    run.seconds = time.monotonic() - started
    return run


async def open_loop(
    url: str,
    payload: object,
    rate: float,
    seconds: float,
    timeout_s: float = 10.0,
    events: dict[float, Any] | None = None,
) -> Run:
    """Send ``rate`` requests per second for ``seconds``, never waiting for answers.

    ``events`` maps seconds after the start to callables run (in a thread) at that time:
    stop a dependency, send a signal.
    """
    import aiohttp

    body, run, tasks = json.dumps(payload).encode(), Run(), []
    pending = sorted((events or {}).items())
    started = time.monotonic()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

        async def send() -> None:
            run.samples.append(await _one(session, url, body, timeout_s))

        n = 0
        while (now := time.monotonic()) - started < seconds:
            while pending and now - started >= pending[0][0]:
                tasks.append(asyncio.create_task(asyncio.to_thread(pending.pop(0)[1])))
            due = started + n / rate
            if due > now:
                await asyncio.sleep(due - now)
                continue
            tasks.append(asyncio.create_task(send()))
            n += 1
        await asyncio.gather(*tasks)
    run.seconds = seconds
    return run


def instances(n: int = 5, first_driver: int = 1001, customer: int = 7) -> dict[str, Any]:
    """A KServe V1 body with ``n`` candidate drivers."""
    return {
        "instances": [
            {
                "customer_id": customer,
                "driver_id": first_driver + i,
                "trip_distance_km": 4.2,
                "pickup_hour": 18,
            }
            for i in range(n)
        ]
    }


class ServingStack:
    """redis-server + predictor + transformer (gRPC V2 between them) on loopback ports."""

    def __init__(
        self,
        repo: Path,
        artifact: Path,
        root: Path,
        transformer_env: dict[str, str] | None = None,
        predictor_env: dict[str, str] | None = None,
    ) -> None:
        self.root = root
        self.repo = Path(
            shutil.copytree(
                repo, root / "repo", ignore=shutil.ignore_patterns("registry.db", "online_store.db")
            )
        )
        self.artifact = artifact
        self.transformer_env = transformer_env or {}
        self.predictor_env = predictor_env or {}
        self.redis = RedisServer()
        self.predictor_ports = (free_port(), free_port())
        self.transformer_ports = (free_port(), free_port())
        self.predictor: ServerProcess | None = None
        self.transformer: ServerProcess | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.transformer_ports[0]}"

    @property
    def predictor_url(self) -> str:
        return f"http://{LOOPBACK}:{self.predictor_ports[0]}"

    @property
    def infer_url(self) -> str:
        return f"{self.url}/v1/models/{MODEL}:predict"

    def start(self) -> ServingStack:
        self.redis.start()
        self.predictor = self.start_predictor()
        self.materialize()
        self.transformer = self.start_transformer()
        self.predictor.wait_ready(120)
        self.transformer.wait_ready(120)
        return self

    def start_predictor(self) -> ServerProcess:
        http, grpc_port = self.predictor_ports
        args = ["-m", "berth_predictor", "--model_name", MODEL, "--model_dir", str(self.artifact)]
        return ServerProcess(
            [*args, "--http_port", str(http), "--grpc_port", str(grpc_port)],
            f"http://{LOOPBACK}:{http}/v2/health/ready",
            env=self.predictor_env,
            log_path=self.root / "predictor.log",
        ).start()

    def start_transformer(self) -> ServerProcess:
        http, grpc_port = self.transformer_ports
        env = {
            "REDIS_CONNECTION_STRING": self.redis.connection_string,
            "BERTH_TRANSFORMER_FEATURE_REPO": str(self.repo),
            "BERTH_TRANSFORMER_MODEL_METADATA": str(self.artifact / "metadata.json"),
            **self.transformer_env,
        }
        return ServerProcess(
            [
                *("-m", "berth_transformer", "--model_name", MODEL),
                *("--predictor_host", f"{LOOPBACK}:{self.predictor_ports[1]}"),
                *("--http_port", str(http), "--grpc_port", str(grpc_port)),
            ],
            f"http://{LOOPBACK}:{http}/v2/health/ready",
            env=env,
            log_path=self.root / "transformer.log",
        ).start()

    def materialize(self) -> None:
        """Apply the repo and put every entity's latest row into this Redis."""
        import os
        from datetime import UTC, datetime, timedelta

        from berth.featurerepo import apply_repo, open_store

        saved = os.environ.get("REDIS_CONNECTION_STRING")
        os.environ["REDIS_CONNECTION_STRING"] = self.redis.connection_string
        try:
            apply_repo(self.repo)
            now = datetime.now(UTC)
            open_store(self.repo).materialize(start_date=now - timedelta(days=3650), end_date=now)
        finally:
            if saved is None:
                os.environ.pop("REDIS_CONNECTION_STRING", None)
            else:
                os.environ["REDIS_CONNECTION_STRING"] = saved

    def save_redis(self) -> None:
        """Snapshot Redis to its dir: a restart on the same port comes back with the data."""
        import redis

        redis.Redis(host=LOOPBACK, port=self.redis.port).save()

    def stop(self) -> None:
        for proc in (self.transformer, self.predictor):
            if proc is not None:
                proc.stop()
        self.redis.close()
