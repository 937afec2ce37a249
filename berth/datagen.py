"""Seeded, deterministic synthetic data for the driver-ranking workload.

Writes the offline parquet sources of ``feature_repo/`` plus ``rides.parquet``, the labelled
ride requests that ``berth build`` trains on. The same seed, sizes and ``end`` give the same
bytes of data.

The label ``accepted`` (the offered driver was accepted and completed the trip) is drawn from
``sigmoid(logit)`` where the logit is a documented function of the point-in-time features::

    logit = 2 * ( -0.3
          + 3.0 * (conv_rate - 0.5) + 2.0 * (acc_rate - 0.6) - 6.0 * (cancel_rate - 0.08)
          - 0.18 * (avg_pickup_eta_min - 6) + 1.6 * (rating - 4.5)
          + 0.8 * is_premium * cust_is_member - 3.0 * (cust_cancel_rate - 0.1)
          - 0.06 * |trip_distance_km - cust_avg_trip_km|
          - 0.9 * rush_hour * (trip_distance_km > 12)       # long trips at rush hour
          + 0.4 * (vehicle_capacity >= 6) * (trip_distance_km > 20) )

``rush_hour`` is ``pickup_hour`` in 7-9 or 16-19. Hourly stats of a ride are those of the hour
that started before it (what Feast's point-in-time join returns).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

FIRST_DRIVER_ID = 1001
FIRST_CUSTOMER_ID = 1


@dataclass(frozen=True)
class DataSpec:
    """Sizes of the generated data set."""

    drivers: int = 120
    customers: int = 400
    days: int = 10
    rides: int = 24_000
    seed: int = 7


def default_end() -> datetime:
    """The current hour (UTC): the newest hourly stats are fresh when served right away."""
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0)


def _driver_hourly_stats(
    rng: np.random.Generator, ids: np.ndarray, hours: pd.DatetimeIndex
) -> pd.DataFrame:
    n, h = len(ids), len(hours)
    base_conv = rng.beta(5, 5, n)
    base_acc = rng.beta(6, 4, n)
    base_cancel = rng.beta(2, 20, n)
    base_eta = rng.gamma(6, 1.0, n)
    base_trips = rng.integers(5, 30, n)

    def walk(base: np.ndarray, scale: float, lo: float, hi: float) -> np.ndarray:
        noise = rng.normal(0, scale, (h, n))
        return np.clip(base[None, :] + noise, lo, hi)

    frame = pd.DataFrame(
        {
            "driver_id": np.tile(ids, h),
            "event_timestamp": hours.repeat(n),
            "conv_rate": walk(base_conv, 0.08, 0, 1).ravel(),
            "acc_rate": walk(base_acc, 0.08, 0, 1).ravel(),
            "avg_daily_trips": walk(base_trips.astype(float), 1.5, 0, 60).round().ravel(),
            "trips_last_hour": rng.poisson(1.5, (h, n)).ravel(),
            "cancel_rate": walk(base_cancel, 0.03, 0, 1).ravel(),
            "avg_pickup_eta_min": walk(base_eta, 1.5, 1, 30).ravel(),
            "online_minutes_last_hour": rng.uniform(0, 60, (h, n)).ravel(),
        }
    )
    return frame.astype(
        {
            "avg_daily_trips": "int64",
            "trips_last_hour": "int64",
            **{c: "float32" for c in ("conv_rate", "acc_rate", "cancel_rate")},
            **{c: "float32" for c in ("avg_pickup_eta_min", "online_minutes_last_hour")},
        }
    )


def _driver_profile(rng: np.random.Generator, ids: np.ndarray, ts: datetime) -> pd.DataFrame:
    n = len(ids)
    return pd.DataFrame(
        {
            "driver_id": ids,
            "event_timestamp": ts,
            "rating": np.clip(rng.normal(4.6, 0.25, n), 1, 5).astype("float32"),
            "years_active": rng.gamma(2, 1.5, n).astype("float32"),
            "vehicle_age_years": rng.uniform(0, 12, n).astype("float32"),
            "total_trips": rng.integers(10, 8000, n).astype("int64"),
            "is_premium": (rng.random(n) < 0.2).astype("int64"),
            "vehicle_capacity": rng.choice([4, 4, 4, 6, 7], n).astype("int64"),
            "home_zone_km": rng.gamma(2, 4, n).astype("float32"),
        }
    )


def _customer_profile(rng: np.random.Generator, ids: np.ndarray, ts: datetime) -> pd.DataFrame:
    n = len(ids)
    return pd.DataFrame(
        {
            "customer_id": ids,
            "event_timestamp": ts,
            "cust_rating": np.clip(rng.normal(4.7, 0.2, n), 1, 5).astype("float32"),
            "cust_lifetime_trips": rng.integers(0, 2000, n).astype("int64"),
            "cust_avg_tip_pct": rng.gamma(2, 5, n).astype("float32"),
            "cust_cancel_rate": rng.beta(2, 18, n).astype("float32"),
            "cust_is_member": (rng.random(n) < 0.3).astype("int64"),
            "cust_avg_trip_km": rng.gamma(3, 3, n).astype("float32"),
        }
    )


def label_logit(rows: pd.DataFrame) -> np.ndarray:
    """The documented signal behind ``accepted`` (see the module docstring)."""
    hour = rows["pickup_hour"].to_numpy()
    km = rows["trip_distance_km"].to_numpy()
    rush = ((hour >= 7) & (hour <= 9)) | ((hour >= 16) & (hour <= 19))
    logit: np.ndarray = 2.0 * (
        -0.3
        + 3.0 * (rows["conv_rate"] - 0.5)
        + 2.0 * (rows["acc_rate"] - 0.6)
        - 6.0 * (rows["cancel_rate"] - 0.08)
        - 0.18 * (rows["avg_pickup_eta_min"] - 6)
        + 1.6 * (rows["rating"] - 4.5)
        + 0.8 * rows["is_premium"] * rows["cust_is_member"]
        - 3.0 * (rows["cust_cancel_rate"] - 0.1)
        - 0.06 * np.abs(km - rows["cust_avg_trip_km"])
        - 0.9 * (rush & (km > 12))
        + 0.4 * ((rows["vehicle_capacity"] >= 6) & (km > 20))
    ).to_numpy(dtype="float64")
    return logit


def _rides(
    rng: np.random.Generator,
    spec: DataSpec,
    start: datetime,
    end: datetime,
    stats: pd.DataFrame,
    drivers: pd.DataFrame,
    customers: pd.DataFrame,
) -> pd.DataFrame:
    span = (end - start).total_seconds()
    offsets = np.sort(rng.uniform(3600, span, spec.rides))
    ts = pd.to_datetime(start) + pd.to_timedelta(offsets, unit="s")
    rides = pd.DataFrame(
        {
            "event_timestamp": ts,
            "driver_id": rng.integers(FIRST_DRIVER_ID, FIRST_DRIVER_ID + spec.drivers, spec.rides),
            "customer_id": rng.integers(
                FIRST_CUSTOMER_ID, FIRST_CUSTOMER_ID + spec.customers, spec.rides
            ),
            "trip_distance_km": rng.gamma(2.5, 4.0, spec.rides).astype("float32"),
        }
    )
    rides["pickup_hour"] = rides["event_timestamp"].dt.hour.astype("int64")
    # Point-in-time view of the hourly stats: the latest hour at or before the ride.
    joined = rides.assign(stat_hour=rides["event_timestamp"].dt.floor("h"))
    joined = joined.merge(
        stats.rename(columns={"event_timestamp": "stat_hour"}), on=["driver_id", "stat_hour"]
    )
    joined = joined.merge(drivers.drop(columns="event_timestamp"), on="driver_id")
    joined = joined.merge(customers.drop(columns="event_timestamp"), on="customer_id")
    joined = joined.sort_values("event_timestamp", kind="stable").reset_index(drop=True)
    prob = 1.0 / (1.0 + np.exp(-label_logit(joined)))
    joined["accepted"] = (rng.random(len(joined)) < prob).astype("int64")
    return joined[
        [
            "event_timestamp",
            "driver_id",
            "customer_id",
            "trip_distance_km",
            "pickup_hour",
            "accepted",
        ]
    ]


def generate(
    data_dir: Path, spec: DataSpec = DataSpec(), end: datetime | None = None
) -> dict[str, Any]:
    """Write the four parquet files under ``data_dir``; return a summary for progress output."""
    end = (end or default_end()).astimezone(UTC)
    start = end - timedelta(days=spec.days)
    rng = np.random.default_rng(spec.seed)
    driver_ids = np.arange(FIRST_DRIVER_ID, FIRST_DRIVER_ID + spec.drivers, dtype="int64")
    customer_ids = np.arange(FIRST_CUSTOMER_ID, FIRST_CUSTOMER_ID + spec.customers, dtype="int64")
    hours = pd.date_range(start, end, freq="h", tz=UTC)

    stats = _driver_hourly_stats(rng, driver_ids, hours)
    drivers = _driver_profile(rng, driver_ids, start - timedelta(days=1))
    customers = _customer_profile(rng, customer_ids, start - timedelta(days=1))
    rides = _rides(rng, spec, start, end, stats, drivers, customers)

    data_dir.mkdir(parents=True, exist_ok=True)
    created = pd.Timestamp(end)
    for name, frame in (
        ("driver_hourly_stats", stats),
        ("driver_profile", drivers),
        ("customer_profile", customers),
    ):
        frame.assign(created=created).to_parquet(data_dir / f"{name}.parquet", index=False)
    rides.to_parquet(data_dir / "rides.parquet", index=False)
    return {
        "start": start.isoformat(),
        "end": end.isoformat(),
        "driver_hourly_stats": len(stats),
        "rides": len(rides),
        "positive_rate": round(float(rides["accepted"].mean()), 3),
    }
