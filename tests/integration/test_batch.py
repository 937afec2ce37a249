"""``berth batch-score`` on the small build: parity with the online path, the Ray engine's
identical output, and bad input (exit 2, the column or service named, no output left behind).

Real parts: Feast's offline store (``get_historical_features`` on the build's parquet data),
the int8 artifact in ONNX Runtime, the serving stack (redis-server, predictor, transformer) for
the online answers, a local Ray instance with 2 CPUs (one per module).
"""

from __future__ import annotations

import json
import shutil
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from berth.batch.run import OUTPUT_COLUMNS
from berth.cli import main

pytestmark = pytest.mark.integration

ENTITY_COLUMNS = ["customer_id", "driver_id", "event_timestamp", "trip_distance_km", "pickup_hour"]


@pytest.fixture(scope="module")
def repo(built: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private copy of the build's feature repo with its data (batch-score applies it)."""
    dest = tmp_path_factory.mktemp("batch") / "feature_repo"
    return Path(shutil.copytree(built[0], dest))


@pytest.fixture(scope="module")
def rides(repo: Path) -> pd.DataFrame:
    return pd.read_parquet(repo / "data" / "rides.parquet")[ENTITY_COLUMNS]


def score(
    repo: Path, artifact: Path, entities: pd.DataFrame, out_dir: Path, *extra: str
) -> tuple[int, pd.DataFrame | None]:
    out_dir.mkdir(parents=True, exist_ok=True)
    path, output = out_dir / "entities.parquet", out_dir / "scores.parquet"
    entities.to_parquet(path, index=False)
    argv = ["batch-score", "--entities", str(path), "--output", str(output)]
    code = main([*argv, "--artifact", str(artifact), "--repo", str(repo), *extra])
    return code, (pd.read_parquet(output) if output.exists() else None)


def online_scores(url: str, rows: pd.DataFrame) -> np.ndarray:
    out: list[float] = []
    for start in range(0, len(rows), 50):
        part = rows.iloc[start : start + 50]
        instances = [
            {
                "customer_id": int(r.customer_id),
                "driver_id": int(r.driver_id),
                "trip_distance_km": float(r.trip_distance_km),
                "pickup_hour": int(r.pickup_hour),
            }
            for r in part.itertuples()
        ]
        body = json.dumps({"instances": instances}).encode()
        request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as resp:
            out += json.loads(resp.read())["predictions"]
    return np.array(out, dtype=np.float32)


def test_parity_with_the_online_path(
    repo: Path,
    rides: pd.DataFrame,
    built: tuple[Path, Path],
    serving_stack: Callable[..., Any],
    tmp_path: Path,
) -> None:
    """Rows timed now (the online store holds each entity's latest values): batch scores equal
    the transformer's answers for the same requests."""
    rows = rides.drop_duplicates(["customer_id", "driver_id"]).head(300).reset_index(drop=True)
    rows["event_timestamp"] = pd.Timestamp(datetime.now(UTC) - timedelta(seconds=1))
    code, scored = score(repo, built[1], rows, tmp_path)
    assert code == 0 and scored is not None
    assert list(scored.columns) == [*ENTITY_COLUMNS, *OUTPUT_COLUMNS]
    assert (scored["filled_values"] == 0).all() and (scored["unknown_entities"] == "").all()
    with serving_stack("batch-parity") as stack:
        online = online_scores(stack.infer_url, rows)
    np.testing.assert_allclose(scored["score"].to_numpy(), online, rtol=1e-6, atol=1e-7)
    assert scored["score"].std() > 0.05  # real, varied scores, not a constant


def test_point_in_time_rows_and_output_shape(
    repo: Path, rides: pd.DataFrame, built: tuple[Path, Path], tmp_path: Path
) -> None:
    rows = rides.head(1000)
    code, scored = score(repo, built[1], rows, tmp_path, "--chunk-rows", "300")
    assert code == 0 and scored is not None and len(scored) == 1000
    pd.testing.assert_frame_equal(
        scored[["customer_id", "driver_id"]], rows[["customer_id", "driver_id"]]
    )
    meta = json.loads((built[1] / "metadata.json").read_text())
    assert set(scored["model_version"]) == {meta["version"]}
    assert scored["inference_timestamp"].nunique() == 1
    assert scored["score"].between(0, 1).all() and scored["score"].dtype == np.float32
    assert sorted(p.name for p in tmp_path.iterdir()) == ["entities.parquet", "scores.parquet"]


@pytest.mark.parametrize(
    ("case", "named"),
    [
        ("missing_column", "pickup_hour"),
        ("future_timestamp", "event_timestamp"),
        ("unknown_entity", "driver_id"),
        ("null_value", "customer_id"),
        ("string_ids", "driver_id"),
    ],
)
def test_bad_entities_exit_2_naming_the_column(
    case: str,
    named: str,
    repo: Path,
    rides: pd.DataFrame,
    built: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    rows = rides.head(50).copy()
    if case == "missing_column":
        rows = rows.drop(columns=["pickup_hour"])
    elif case == "future_timestamp":
        rows.loc[7, "event_timestamp"] = pd.Timestamp(datetime.now(UTC) + timedelta(hours=1))
    elif case == "unknown_entity":
        rows.loc[3, "driver_id"] = 999_999
    elif case == "null_value":
        rows["customer_id"] = rows["customer_id"].astype("Int64")
        rows.loc[4, "customer_id"] = None
    else:
        rows["driver_id"] = rows["driver_id"].astype(str)
    code, scored = score(repo, built[1], rows, tmp_path)
    err = capsys.readouterr().err
    assert code == 2 and f"'{named}'" in err, err
    assert scored is None and [p.name for p in tmp_path.iterdir()] == ["entities.parquet"]


def test_unknown_entities_filled_when_asked(
    repo: Path, rides: pd.DataFrame, built: tuple[Path, Path], tmp_path: Path
) -> None:
    rows = rides.head(20).copy()
    rows.loc[3, "driver_id"] = 999_999
    code, scored = score(repo, built[1], rows, tmp_path, "--unknown-entities", "fill")
    assert code == 0 and scored is not None
    assert scored.loc[3, "unknown_entities"] == "driver_id"
    assert scored.loc[3, "filled_values"] == 12  # six hourly stats + six profile features
    assert (scored.drop(index=3)["unknown_entities"] == "").all()


@pytest.mark.parametrize(
    ("service", "said"),
    [
        ("driver_ranking_v2", "FeatureService 'driver_ranking_v2'"),
        ("no_such_service", "FeatureService 'no_such_service' is not in the feature repo"),
    ],
)
def test_wrong_feature_service_exit_2(
    service: str,
    said: str,
    repo: Path,
    rides: pd.DataFrame,
    built: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, scored = score(repo, built[1], rides.head(10), tmp_path, "--feature-service", service)
    err = capsys.readouterr().err
    assert code == 2 and said in err, err
    assert scored is None


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    """One local Ray instance (2 CPUs) for the module: ray.init costs seconds."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_ray_engine_gives_identical_output(
    local_ray: None, repo: Path, rides: pd.DataFrame, built: tuple[Path, Path], tmp_path: Path
) -> None:
    rows = rides.head(5000)
    options = ("--chunk-rows", "2500", "--batch-rows", "1000")
    code, local = score(repo, built[1], rows, tmp_path / "local", *options)
    assert code == 0 and local is not None
    code, on_ray = score(repo, built[1], rows, tmp_path / "ray", *options, "--engine", "ray")
    assert code == 0 and on_ray is not None
    same = [c for c in local.columns if c != "inference_timestamp"]
    pd.testing.assert_frame_equal(local[same], on_ray[same], check_exact=True)
