"""Run a batch: check everything first, then join and score chunk by chunk into a temporary
parquet file that is renamed to the output at the end (an error leaves no output behind)."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TextIO

import pandas as pd

from berth.artifact import verify_artifact
from berth.batch.engines import make_engine
from berth.batch.entities import (
    BatchInputError,
    known_ids,
    read_entities,
    reject_unknown,
    unknown_entities,
)
from berth.batch.join import open_offline

OUTPUT_COLUMNS = (
    "score",
    "model_version",
    "inference_timestamp",
    "filled_values",
    "unknown_entities",
)


@dataclass(frozen=True)
class BatchOptions:
    entities: Path
    output: Path
    artifact: Path
    repo: Path
    feature_store_yaml: Path
    feature_service: str | None = None  # default: the artifact's
    engine: Literal["local", "ray"] = "local"
    workers: int = 2
    chunk_rows: int = 100_000
    batch_rows: int = 8192
    unknown_entities: Literal["reject", "fill"] = "reject"


@dataclass
class BatchReport:
    rows: int = 0
    chunks: int = 0
    join_s: float = 0.0
    score_s: float = 0.0
    total_s: float = 0.0
    filled_rows: int = 0
    unknown_rows: int = 0

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.total_s if self.total_s else 0.0


class Progress:
    """A bar with rows/s on a terminal, one JSON line per chunk otherwise."""

    def __init__(self, total: int, stream: TextIO | None = None) -> None:
        self.total, self.stream = total, stream or sys.stderr
        self.tty = self.stream.isatty()
        self.started = time.perf_counter()

    def chunk(self, report: BatchReport) -> None:
        rate = report.rows / max(time.perf_counter() - self.started, 1e-9)
        if self.tty:
            done = int(30 * report.rows / max(self.total, 1))
            bar = "#" * done + "." * (30 - done)
            end = "\n" if report.rows >= self.total else ""
            print(
                f"\r[{bar}] {report.rows:,}/{self.total:,} rows  {rate:,.0f} rows/s",
                end=end,
                file=self.stream,
                flush=True,
            )
            return
        line = {"chunk": report.chunks, "rows": report.rows, "total": self.total,
                "rows_per_s": round(rate), "join_s": round(report.join_s, 3),
                "score_s": round(report.score_s, 3)}  # fmt: skip
        print(json.dumps(line), file=self.stream, flush=True)


def batch_score(opts: BatchOptions, stream: TextIO | None = None) -> BatchReport:
    started = time.perf_counter()
    meta = verify_artifact(opts.artifact)
    service = opts.feature_service or meta.feature_service
    offline = open_offline(opts.repo, opts.feature_store_yaml, service, meta)
    if not opts.entities.is_file():
        raise BatchInputError(f"{opts.entities}: no such entity file", field="entities")
    frame = read_entities(opts.entities, offline.schema)
    if frame.empty:
        raise BatchInputError(f"{opts.entities}: no entity rows", field="entities")
    unknown = unknown_entities(frame, known_ids(offline.schema))
    if opts.unknown_entities == "reject":
        reject_unknown(frame, unknown, list(offline.schema.join_keys))
    report = BatchReport(unknown_rows=int((unknown != "").sum()))
    progress = Progress(len(frame), stream)
    engine = make_engine(opts.engine, opts.artifact, opts.batch_rows, opts.workers)
    inference_ts = pd.Timestamp(datetime.now(UTC))
    temp = opts.output.with_name(f".{opts.output.name}.tmp-{os.getpid()}")
    try:
        with _Writer(temp) as writer:
            for start in range(0, len(frame), opts.chunk_rows):
                chunk = frame.iloc[start : start + opts.chunk_rows]
                t0 = time.perf_counter()
                rows, filled = offline.join(chunk)
                t1 = time.perf_counter()
                scores = engine.score(rows)
                report.join_s += t1 - t0
                report.score_s += time.perf_counter() - t1
                out = chunk.assign(
                    score=scores,
                    model_version=meta.version,
                    inference_timestamp=inference_ts,
                    filled_values=filled,
                    unknown_entities=unknown[start : start + len(chunk)].astype(str),
                )
                writer.write(out)
                report.rows += len(chunk)
                report.chunks += 1
                report.filled_rows += int((filled > 0).sum())
                progress.chunk(report)
        os.replace(temp, opts.output)
    finally:
        temp.unlink(missing_ok=True)
        engine.close()
    report.total_s = time.perf_counter() - started
    return report


class _Writer(contextlib.AbstractContextManager["_Writer"]):
    """Chunks appended to one parquet file (its schema from the first chunk)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.writer: Any = None

    def write(self, frame: pd.DataFrame) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pandas(frame, preserve_index=False)
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.path, table.schema)
        self.writer.write_table(table)

    def __exit__(self, *exc: object) -> None:
        if self.writer is not None:
            self.writer.close()


def summary(report: BatchReport) -> dict[str, float | int]:
    out: dict[str, float | int] = {k: round(v, 3) for k, v in asdict(report).items()}
    out["rows_per_s"] = round(report.rows_per_s)
    return out
