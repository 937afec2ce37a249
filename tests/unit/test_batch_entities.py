"""Pure parts of ``berth batch-score``: the entity checks, unknown ids, the progress output."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from berth.batch.entities import (
    BatchInputError,
    EntitySchema,
    check_entities,
    unknown_entities,
)
from berth.batch.run import BatchReport, Progress

SCHEMA = EntitySchema(join_keys={"driver_id": [], "customer_id": []}, request_fields=["hour"])
NOW = datetime(2026, 1, 2, 12, tzinfo=UTC)


def frame(**overrides: object) -> pd.DataFrame:
    base = {
        "customer_id": [1, 2],
        "extra": ["a", "b"],
        "driver_id": [1001, 1002],
        "event_timestamp": pd.to_datetime(["2026-01-01 10:00", "2026-01-02 11:00"]),
        "hour": [10, 11],
    }
    return pd.DataFrame({**base, **overrides})


def test_naive_timestamps_are_utc_and_extra_columns_dropped_in_input_order() -> None:
    assert SCHEMA.columns == ["driver_id", "customer_id", "event_timestamp", "hour"]
    out = check_entities(frame(), SCHEMA, NOW)
    assert list(out.columns) == ["customer_id", "driver_id", "event_timestamp", "hour"]
    assert str(out["event_timestamp"].dt.tz) == "UTC"


def test_a_timestamp_in_another_zone_is_converted_before_the_future_check() -> None:
    # 12:59 in Paris is 11:59Z (fine), 13:30 is 12:30Z (future)
    stamps = pd.to_datetime(["2026-01-02 12:59", "2026-01-02 13:30"]).tz_localize("Europe/Paris")
    with pytest.raises(BatchInputError, match="1 timestamp\\(s\\) in the future \\(row 1") as exc:
        check_entities(frame(event_timestamp=stamps), SCHEMA, NOW)
    assert exc.value.field == "event_timestamp"


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"hour": ["ten", "eleven"]}, "hour"),
        ({"event_timestamp": ["yesterday", "today"]}, "event_timestamp"),
        ({"driver_id": [1001, None]}, "driver_id"),
    ],
)
def test_bad_columns_are_named(data: dict[str, object], field: str) -> None:
    with pytest.raises(BatchInputError) as exc:
        check_entities(frame(**data), SCHEMA, NOW)
    assert exc.value.field == field and repr(field) in exc.value.message


def test_unknown_entities_name_every_unknown_key_per_row() -> None:
    known = {"driver_id": np.array([1001]), "customer_id": np.array([1])}
    out = unknown_entities(frame(driver_id=[1001, 7], customer_id=[9, 9]), known)
    assert list(out) == ["customer_id", "driver_id,customer_id"]


def test_progress_is_json_lines_off_a_terminal_and_a_bar_on_one() -> None:
    stream = io.StringIO()
    progress = Progress(10, stream)
    progress.chunk(BatchReport(rows=4, chunks=1, join_s=0.5, score_s=0.1))
    line = json.loads(stream.getvalue())
    assert (line["chunk"], line["rows"], line["total"], line["join_s"]) == (1, 4, 10, 0.5)

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty = Tty()
    Progress(10, tty).chunk(BatchReport(rows=10, chunks=2))
    assert (
        tty.getvalue().startswith("\r[" + "#" * 30 + "] 10/10 rows") and "rows/s" in tty.getvalue()
    )
