"""Locust load for Berth's transformer, for those who prefer locust to ``python -m benchmarks``.

    pip install locust
    locust -f benchmarks/locustfile.py --host http://127.0.0.1:8080 \\
        --headless --users 40 --spawn-rate 20 --run-time 60s

Settings (environment): ``BERTH_PROTOCOL`` ``v1`` (default) or ``v2`` (Open Inference REST);
``BERTH_CANDIDATES`` drivers per request (10); ``BERTH_RPS_PER_USER`` each user's request rate
(default 5: 40 users offer about 200 requests/s); ``BERTH_MODEL`` (``driver-ranking``);
``BERTH_DRIVERS`` / ``BERTH_CUSTOMERS`` id ranges as ``first-last`` (``1001-1120``, ``1-400``).

Locust users are a closed loop: a user waits for its answer before its next request, so when the
server slows down the offered load drops with it and the wait it should have caused is never
measured (coordinated omission). ``constant_throughput`` keeps each user's *pace* but cannot
send while a request is outstanding. Use locust for exploration and for its web UI; use
``python -m benchmarks load|sweep|compare`` (open loop, latency from the intended send time)
for the figures in ``benchmarks/README.md``.
"""

from __future__ import annotations

import itertools
import os

from locust import HttpUser, constant_throughput, task

try:
    from benchmarks import payloads
except ImportError:  # locust puts this file's folder, not the project root, on sys.path
    import payloads  # type: ignore[no-redef]


def _range(name: str, default: tuple[int, int]) -> tuple[int, int]:
    text = os.environ.get(name)
    if not text:
        return default
    first, last = text.split("-", 1)
    return int(first), int(last)


PROTOCOL = os.environ.get("BERTH_PROTOCOL", "v1")
MODEL = os.environ.get("BERTH_MODEL", payloads.MODEL)
CANDIDATES = int(os.environ.get("BERTH_CANDIDATES", "10"))
RPS_PER_USER = float(os.environ.get("BERTH_RPS_PER_USER", "5"))
_REQUESTS = payloads.ranking_requests(
    256,
    CANDIDATES,
    drivers=_range("BERTH_DRIVERS", (1001, 1120)),
    customers=_range("BERTH_CUSTOMERS", (1, 400)),
)
_BODIES = [
    payloads.v1_body(rows) if PROTOCOL == "v1" else payloads.v2_body(rows) for rows in _REQUESTS
]


class RankingUser(HttpUser):  # type: ignore[misc]
    """One client ranking ``CANDIDATES`` drivers per request, at ``RPS_PER_USER``."""

    wait_time = constant_throughput(RPS_PER_USER)

    def on_start(self) -> None:
        self._bodies = itertools.cycle(_BODIES)
        self._path = payloads.rest_path(PROTOCOL, MODEL)

    @task
    def rank(self) -> None:
        self.client.post(
            self._path,
            data=next(self._bodies),
            headers={"content-type": "application/json"},
            name=f"{PROTOCOL} {CANDIDATES} candidates",
        )
