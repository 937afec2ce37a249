from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from berth.datagen import FIRST_CUSTOMER_ID, FIRST_DRIVER_ID, DataSpec, generate, label_logit
from berth.modelbuild.measures import auc

END = datetime(2026, 1, 5, 12, tzinfo=UTC)
SPEC = DataSpec(drivers=10, customers=20, days=2, rides=800, seed=3)


def _read(directory: Path) -> dict[str, pd.DataFrame]:
    return {p.stem: pd.read_parquet(p) for p in sorted(directory.glob("*.parquet"))}


def test_same_seed_same_data(tmp_path: Path) -> None:
    generate(tmp_path / "a", SPEC, END)
    generate(tmp_path / "b", SPEC, END)
    a, b = _read(tmp_path / "a"), _read(tmp_path / "b")
    assert set(a) == {"driver_hourly_stats", "driver_profile", "customer_profile", "rides"}
    for name in a:
        pd.testing.assert_frame_equal(a[name], b[name])
    generate(tmp_path / "c", DataSpec(**{**SPEC.__dict__, "seed": 4}), END)
    assert not a["rides"].equals(_read(tmp_path / "c")["rides"])


def test_ids_sizes_and_timestamps(tmp_path: Path) -> None:
    summary = generate(tmp_path, SPEC, END)
    frames = _read(tmp_path)
    assert frames["driver_profile"]["driver_id"].min() == FIRST_DRIVER_ID
    assert frames["customer_profile"]["customer_id"].min() == FIRST_CUSTOMER_ID
    assert summary["rides"] == SPEC.rides == len(frames["rides"])
    stats = frames["driver_hourly_stats"]
    assert stats["event_timestamp"].max() == pd.Timestamp(END)
    assert len(stats) == SPEC.drivers * (SPEC.days * 24 + 1)


def test_label_follows_documented_signal(tmp_path: Path) -> None:
    """The label is learnable: the documented logit alone ranks it well above chance."""
    generate(tmp_path, DataSpec(drivers=30, customers=60, days=3, rides=4000), END)
    f = _read(tmp_path)
    rides = f["rides"].assign(stat_hour=f["rides"]["event_timestamp"].dt.floor("h"))
    rows = (
        rides.merge(
            f["driver_hourly_stats"].rename(columns={"event_timestamp": "stat_hour"}),
            on=["driver_id", "stat_hour"],
        )
        .merge(f["driver_profile"].drop(columns=["event_timestamp", "created"]), on="driver_id")
        .merge(f["customer_profile"].drop(columns=["event_timestamp", "created"]), on="customer_id")
    )
    assert auc(rows["accepted"].to_numpy(), label_logit(rows)) > 0.8
    assert 0.2 < rows["accepted"].mean() < 0.6
    assert np.isfinite(label_logit(rows)).all()
