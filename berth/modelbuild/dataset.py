"""Training set through Feast's point-in-time join of the FeatureService."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from berth.featurerepo import SQLITE_YAML, apply_repo, open_store, service_contract
from berth.modelbuild.datacontract import load_contract, validate_frame

LABEL = "accepted"
RIDES_FILE = "rides.parquet"


def build_training_set(repo: Path, service: str, workdir: Path) -> dict[str, object]:
    """Write ``training.parquet`` and ``contract.json`` to ``workdir``; refuse (raise
    :class:`~berth.modelbuild.datacontract.DataContractError`) when the training set breaks the
    repo's data contract.

    The offline store needs no online store; the SQLite profile keeps the build free of Redis.
    """
    yaml_path = repo / SQLITE_YAML
    apply_repo(repo, yaml_path)
    store = open_store(repo, yaml_path)
    contract = service_contract(store, service)
    data_contract = load_contract(repo, contract)
    rides = pd.read_parquet(repo / "data" / RIDES_FILE)
    frame = store.get_historical_features(
        entity_df=rides, features=store.get_feature_service(service)
    ).to_df()
    # Request-time features come back twice (entity column and on-demand output): keep one.
    frame = frame.loc[:, ~frame.columns.duplicated()]
    names = [f.name for f in contract]
    frame = frame[["event_timestamp", "driver_id", "customer_id", *names, LABEL]]
    frame = frame.sort_values("event_timestamp", kind="stable").reset_index(drop=True)
    for stale in ("training.parquet", "contract.json"):  # never train on an older set
        (workdir / stale).unlink(missing_ok=True)
    validate_frame(frame, data_contract, f"training set of {service}")
    workdir.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(workdir / "training.parquet", index=False)
    (workdir / "contract.json").write_text(
        json.dumps(
            {
                "feature_service": service,
                "features": [{"name": f.name, "dtype": f.dtype, "view": f.view} for f in contract],
                "data_contract": data_contract.model_dump(mode="json"),
            },
            indent=2,
        )
    )
    missing = int(frame[names].isna().sum().sum())
    return {"rows": len(frame), "features": len(names), "missing_values": missing}


def load_training_set(workdir: Path) -> tuple[pd.DataFrame, dict]:  # type: ignore[type-arg]
    contract = json.loads((workdir / "contract.json").read_text())
    return pd.read_parquet(workdir / "training.parquet"), contract


def time_split(frame: pd.DataFrame, heldout_fraction: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Oldest rows train, newest rows are held out (no look-ahead)."""
    cut = int(len(frame) * (1 - heldout_fraction))
    return frame.iloc[:cut], frame.iloc[cut:]
