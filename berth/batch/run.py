"""Run a batch: check everything first, then join and score chunk by chunk into a temporary
parquet file that is renamed to the output at the end (an error leaves no output behind)."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC
from pathlib import Path
from typing import Any, Literal, TextIO

import numpy as np
import pandas as pd

from berth.artifact import verify_artifact
from berth.batch.engines import Engine, make_engine
from berth.batch.entities import (
    BatchInputError,
    EntitySchema,
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
    frame, unknown = _entities(opts, offline.schema)
    report = BatchReport(unknown_rows=int((unknown != "").sum()))
    progress = Progress(len(frame), stream)
    engine = make_engine(opts.engine, opts.artifact, opts.batch_rows, opts.workers)
    extra = {"model_version": meta.version, "inference_timestamp": pd.Timestamp.now(UTC)}
    temp = opts.output.with_name(f".{opts.output.name}.tmp-{os.getpid()}")
    try:
        with _Writer(temp) as writer:
            deferred: list[tuple[pd.DataFrame, np.ndarray, np.ndarray]] = []
            for start in range(0, len(frame), opts.chunk_rows):
                chunk = frame.iloc[start : start + opts.chunk_rows].assign(
                    unknown_entities=unknown[start : start + opts.chunk_rows].astype(str), **extra
                )
                t0 = time.perf_counter()
                rows, filled = offline.join(chunk)
                report.join_s += time.perf_counter() - t0
                if engine.streams:
                    writer.write(_scored(chunk, _timed(engine, rows, report), filled))
                else:
                    deferred.append((chunk, rows, filled))
                report.rows, report.chunks = report.rows + len(chunk), report.chunks + 1
                report.filled_rows += int((filled > 0).sum())
                progress.chunk(report)
            if deferred:  # one pass over every chunk: the engine's workers start once
                scores = _timed(engine, np.concatenate([d[1] for d in deferred]), report)
                for chunk, _, filled in deferred:
                    writer.write(_scored(chunk, scores[: len(chunk)], filled))
                    scores = scores[len(chunk) :]
        os.replace(temp, opts.output)
    finally:
        temp.unlink(missing_ok=True)
        engine.close()
    report.total_s = time.perf_counter() - started
    return report


def _entities(opts: BatchOptions, schema: EntitySchema) -> tuple[pd.DataFrame, np.ndarray]:
    """The checked entity rows and each row's unknown join keys (rejected unless filled)."""
    if not opts.entities.is_file():
        raise BatchInputError(f"{opts.entities}: no such entity file", field="entities")
    frame = read_entities(opts.entities, schema)
    if frame.empty:
        raise BatchInputError(f"{opts.entities}: no entity rows", field="entities")
    unknown = unknown_entities(frame, known_ids(schema))
    if opts.unknown_entities == "reject":
        reject_unknown(frame, unknown, list(schema.join_keys))
    return frame, unknown


def _timed(engine: Engine, rows: np.ndarray, report: BatchReport) -> np.ndarray:
    t0 = time.perf_counter()
    scores = engine.score(rows)
    report.score_s += time.perf_counter() - t0
    return scores


def _scored(chunk: pd.DataFrame, scores: np.ndarray, filled: np.ndarray) -> pd.DataFrame:
    """The output rows: the entity columns, then :data:`OUTPUT_COLUMNS`."""
    out = chunk.assign(score=scores, filled_values=filled)
    return out[[c for c in out.columns if c not in OUTPUT_COLUMNS] + list(OUTPUT_COLUMNS)]


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
