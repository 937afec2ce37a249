"""The entity table of a batch: its columns, their types, timestamps, and known entities.

Every problem is a :class:`BatchInputError` naming the column (``berth batch-score`` exits 2
on it, before any output is written).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from berth.errors import InvalidInputError

TIMESTAMP = "event_timestamp"


class BatchInputError(InvalidInputError):
    """The entity table (or the FeatureService asked for) is not what the model takes."""


@dataclass(frozen=True)
class EntitySchema:
    """What a FeatureService needs of each entity row: join keys (with the parquet files that
    define their known ids) and request-time fields."""

    join_keys: dict[str, list[Path]]
    request_fields: list[str]

    @property
    def columns(self) -> list[str]:
        return [*self.join_keys, TIMESTAMP, *self.request_fields]


def read_entities(path: Path, schema: EntitySchema, now: datetime | None = None) -> pd.DataFrame:
    """The table at ``path`` with the schema's columns only, timestamps as UTC, checked."""
    try:
        frame = pd.read_parquet(path)
    except (OSError, ValueError) as exc:
        raise BatchInputError(f"{path}: not a readable parquet file ({exc})") from exc
    return check_entities(frame, schema, now or datetime.now(UTC))


def check_entities(frame: pd.DataFrame, schema: EntitySchema, now: datetime) -> pd.DataFrame:
    missing = [c for c in schema.columns if c not in frame.columns]
    if missing:
        raise BatchInputError(
            f"entity table lacks column(s) {missing} (needs {schema.columns})", field=missing[0]
        )
    frame = frame[[c for c in frame.columns if c in schema.columns]].reset_index(drop=True)
    for column in schema.columns:
        nulls = frame[column].isna()
        if nulls.any():
            raise BatchInputError(
                f"column {column!r}: {int(nulls.sum())} empty value(s), first at row "
                f"{int(np.argmax(nulls.to_numpy()))}",
                field=column,
            )
    for column in (*schema.join_keys, *schema.request_fields):
        if not pd.api.types.is_numeric_dtype(frame[column]):
            raise BatchInputError(
                f"column {column!r} is {frame[column].dtype}, expected numbers", field=column
            )
    frame[TIMESTAMP] = _utc(frame[TIMESTAMP])
    future = frame[TIMESTAMP] > pd.Timestamp(now)
    if future.any():
        first = int(np.argmax(future.to_numpy()))
        raise BatchInputError(
            f"column {TIMESTAMP!r}: {int(future.sum())} timestamp(s) in the future (row "
            f"{first}: {frame[TIMESTAMP].iloc[first]}, now {now:%Y-%m-%d %H:%M:%S}Z); features "
            "cannot be known yet",
            field=TIMESTAMP,
        )
    return frame


def _utc(column: pd.Series) -> pd.Series:
    if not pd.api.types.is_datetime64_any_dtype(column):
        raise BatchInputError(
            f"column {TIMESTAMP!r} is {column.dtype}, expected timestamps", field=TIMESTAMP
        )
    if column.dt.tz is None:
        return column.dt.tz_localize("UTC")
    return column.dt.tz_convert("UTC")


def known_ids(schema: EntitySchema) -> dict[str, np.ndarray]:
    """Every id each join key has in the sources of the views that use it."""
    out: dict[str, np.ndarray] = {}
    for key, files in schema.join_keys.items():
        ids = [pd.read_parquet(f, columns=[key])[key].to_numpy() for f in files]
        out[key] = np.unique(np.concatenate(ids)) if ids else np.array([], dtype=np.int64)
    return out


def unknown_entities(frame: pd.DataFrame, known: Mapping[str, np.ndarray]) -> np.ndarray:
    """Per row, the join keys whose id no source has ever seen, comma-joined ('' if none)."""
    flags = {key: ~np.isin(frame[key].to_numpy(), ids) for key, ids in known.items()}
    out = np.full(len(frame), "", dtype=object)
    for key, unknown in flags.items():
        out[unknown] = [f"{v},{key}" if v else key for v in out[unknown]]
    return out


def reject_unknown(frame: pd.DataFrame, unknown: np.ndarray, keys: Sequence[str]) -> None:
    for key in keys:
        rows = np.array([key in u.split(",") for u in unknown], dtype=bool)
        if rows.any():
            sample = sorted({int(v) for v in frame.loc[rows, key].head(5)})
            raise BatchInputError(
                f"column {key!r}: {int(rows.sum())} row(s) name entities no source has (e.g. "
                f"{sample}); pass --unknown-entities fill to score them with the training "
                "defaults",
                field=key,
            )
