"""Drift of served traffic: ``berth_transformer_feature_psi`` and ``berth drift`` on a real stack.

Training-like traffic (rides drawn from the build's own ride log) keeps every feature's PSI
under the alert threshold; shifted traffic (longer trips at night) pushes the request-time
features above it.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest

from berth.drift import DEFAULT_ALERT_PSI
from berth.drift_report import read_psi
from tests.support.serving import ServingStack

pytestmark = [pytest.mark.integration, pytest.mark.slow]
WINDOW = 2000
ROWS_PER_REQUEST = 10


@pytest.fixture(scope="module")
def stack(serving_stack: Any) -> Iterator[ServingStack]:
    settings = {
        "BERTH_TRANSFORMER_DRIFT_WINDOW": str(WINDOW),
        "BERTH_TRANSFORMER_DRIFT_REFRESH_S": "0",
        "BERTH_TRANSFORMER_MAX_CANDIDATES": str(ROWS_PER_REQUEST),
    }
    with serving_stack("drift", transformer_env=settings) as s:
        yield s


def _bodies(rides: pd.DataFrame) -> list[dict[str, Any]]:
    cols = ["customer_id", "driver_id", "trip_distance_km", "pickup_hour"]
    records = rides[cols].astype({"trip_distance_km": float}).to_dict("records")
    records = [
        {k: (float(v) if k == "trip_distance_km" else int(v)) for k, v in r.items()}
        for r in records
    ]
    return [
        {"instances": records[i : i + ROWS_PER_REQUEST]}
        for i in range(0, len(records), ROWS_PER_REQUEST)
    ]


async def _serve(url: str, bodies: list[dict[str, Any]], concurrency: int = 8) -> list[int]:
    import aiohttp

    queue = list(reversed(bodies))
    statuses: list[int] = []

    async def client(session: aiohttp.ClientSession) -> None:
        while queue:
            body = queue.pop()
            async with session.post(
                url,
                data=json.dumps(body).encode(),
                headers={"content-type": "application/json"},
                timeout=aiohttp.ClientTimeout(total=10),
            ) as resp:
                await resp.read()
                statuses.append(resp.status)

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(client(session) for _ in range(concurrency)))
    return statuses


def _rides(stack: ServingStack, n: int, seed: int) -> pd.DataFrame:
    rides = pd.read_parquet(stack.repo / "data" / "rides.parquet")
    return rides.sample(n, random_state=seed, replace=len(rides) < n).reset_index(drop=True)


def _batches(training: pd.DataFrame, n: int) -> list[pd.DataFrame]:
    """Training rows in groups of ROWS_PER_REQUEST with distinct drivers and customers."""
    out: list[pd.DataFrame] = []
    pending = training.sample(frac=1.0, random_state=1).reset_index(drop=True)
    while len(out) * ROWS_PER_REQUEST < n:
        batch = pending.drop_duplicates("driver_id").drop_duplicates("customer_id")
        batch = batch.head(ROWS_PER_REQUEST)
        out.append(batch)
        pending = pending.drop(batch.index)
    return out


def _write_online(store: Any, batch: pd.DataFrame) -> None:
    """Put exactly these training rows' feature values online (fresh timestamps)."""
    now = pd.Timestamp.now(tz="UTC")
    for view, key in (
        ("driver_hourly_stats", "driver_id"),
        ("driver_profile", "driver_id"),
        ("customer_profile", "customer_id"),
    ):
        frame = batch[[key]].copy()
        for feature in store.get_feature_view(view).features:
            frame[feature.name] = batch.get(feature.name, 0.0)
        store.write_to_online_store(view, frame.assign(event_timestamp=now, created=now))


def test_psi_stays_low_on_training_like_traffic_and_rises_when_shifted(
    stack: ServingStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Training-like: each request's rows are training rows, their feature values written
    online just before (the online store holds one snapshot per entity, so replaying rides
    against the latest snapshot is *not* training-like for the hourly aggregates)."""
    from berth.featurerepo import open_store

    monkeypatch.setenv("REDIS_CONNECTION_STRING", stack.redis.connection_string)
    store = open_store(stack.repo)
    training = pd.read_parquet(stack.artifact.parent / "artifact.build" / "training.parquet")
    for batch in _batches(training, WINDOW):
        _write_online(store, batch)
        statuses = asyncio.run(_serve(stack.infer_url, _bodies(batch), concurrency=1))
        assert statuses == [200]
    psi, rows = read_psi(stack.url)
    print("training-like PSI:", {k: round(v, 4) for k, v in sorted(psi.items())})
    assert rows == WINDOW
    assert len(psi) == 20
    assert max(psi.values()) < DEFAULT_ALERT_PSI, psi

    stack.materialize()  # back to the latest snapshot for every entity
    shifted = _rides(stack, WINDOW, seed=2)
    rng = np.random.default_rng(3)
    shifted["trip_distance_km"] = shifted["trip_distance_km"] * 3 + 5
    shifted["pickup_hour"] = rng.integers(1, 4, len(shifted))  # late-night only
    statuses = asyncio.run(_serve(stack.infer_url, _bodies(shifted)))
    assert set(statuses) == {200}
    psi, rows = read_psi(stack.url)
    print("shifted PSI:", {k: round(v, 4) for k, v in sorted(psi.items())})
    assert psi["trip_distance_km"] > DEFAULT_ALERT_PSI
    assert psi["pickup_hour"] > DEFAULT_ALERT_PSI

    cli = subprocess.run(
        [sys.executable, "-m", "berth.cli", "drift", "--url", stack.url, "--fail"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    print(cli.stdout)
    assert cli.returncode == 1
    assert "trip_distance_km" in cli.stdout and "MAJOR SHIFT" in cli.stdout
