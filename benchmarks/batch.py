"""Batch scoring throughput: ``berth batch-score`` on generated entity rows, the local engine
vs Ray with N workers, side by side in one run, and where the time goes (offline join vs
scoring).

A private Feast repo with freshly generated data (``berth.datagen`` defaults) under a temp
dir; ``rows`` entity rows drawn from its drivers and customers, timestamps spread over its
time range (point-in-time joins that find real rows), request features drawn as the
generator draws them. Both engines score the same file with the same chunk and batch sizes;
their outputs are compared (identical scores expected).
"""

from __future__ import annotations

import importlib
import json
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks import machine


def entity_rows(repo: Path, rows: int, seed: int = 11) -> pd.DataFrame:
    data = repo / "data"
    drivers = pd.read_parquet(data / "driver_profile.parquet", columns=["driver_id"])
    customers = pd.read_parquet(data / "customer_profile.parquet", columns=["customer_id"])
    stats = pd.read_parquet(data / "driver_hourly_stats.parquet", columns=["event_timestamp"])
    start, end = stats.event_timestamp.min(), stats.event_timestamp.max()
    rng = np.random.default_rng(seed)
    span_s = (end - start).total_seconds()
    stamps = start + pd.to_timedelta(np.sort(rng.uniform(0, span_s, rows)), unit="s")
    return pd.DataFrame(
        {
            "customer_id": rng.choice(customers.customer_id.unique(), rows),
            "driver_id": rng.choice(drivers.driver_id.unique(), rows),
            "event_timestamp": stamps,
            "trip_distance_km": rng.gamma(2.0, 3.0, rows).astype(np.float32),
            "pickup_hour": stamps.hour.to_numpy(dtype=np.int64),
        }
    )


def run(
    artifact: Path, out: Path, rows: int, workers: int, chunk_rows: int, batch_rows: int
) -> dict[str, Any]:
    from berth.batch.run import BatchOptions, batch_score, summary
    from berth.datagen import DataSpec, generate
    from berth.featurerepo import SQLITE_YAML, copy_repo

    out.mkdir(parents=True, exist_ok=True)
    work = out / "work"
    shutil.rmtree(work, ignore_errors=True)
    repo = copy_repo(work / "repo")
    generate(repo / "data", DataSpec())
    entities = work / "entities.parquet"
    entity_rows(repo, rows).to_parquet(entities, index=False)
    base = BatchOptions(
        entities=entities,
        output=work / "scores-local.parquet",
        artifact=artifact.resolve(),
        repo=repo.resolve(),
        feature_store_yaml=(repo / SQLITE_YAML).resolve(),
        workers=workers,
        chunk_rows=chunk_rows,
        batch_rows=batch_rows,
    )
    results: dict[str, Any] = {"machine": machine.info(), "rows": rows, "workers": workers}
    results["chunk_rows"], results["batch_rows"] = chunk_rows, batch_rows
    importlib.import_module("feast")  # its import (~6-30 s) is paid once, before either run
    with (out / "progress.jsonl").open("w") as progress:
        for engine in ("local", "ray"):
            opts = replace(base, engine=engine, output=work / f"scores-{engine}.parquet")
            busy = machine.busy_pct(1.0)
            started = time.perf_counter()
            report = batch_score(opts, progress)  # type: ignore[arg-type]
            results[engine] = {
                **summary(report),
                "wall_s": round(time.perf_counter() - started, 2),
                "busy_before_pct": round(busy, 1),
                "other_s": round(report.total_s - report.join_s - report.score_s, 2),
                "join_share": round(report.join_s / report.total_s, 3),
                "score_share": round(report.score_s / report.total_s, 3),
                "score_rows_per_s": round(report.rows / report.score_s),
            }
    local = pd.read_parquet(work / "scores-local.parquet", columns=["score"])
    on_ray = pd.read_parquet(work / "scores-ray.parquet", columns=["score"])
    results["identical_scores"] = bool(np.array_equal(local.score, on_ray.score))
    results["ray_vs_local"] = round(
        results["ray"]["rows_per_s"] / results["local"]["rows_per_s"], 2
    )
    (out / "batch.json").write_text(json.dumps(results, indent=2))
    (out / "batch.md").write_text(markdown(results))
    shutil.rmtree(work, ignore_errors=True)
    return results


def markdown(results: dict[str, Any]) -> str:
    lines = [
        f"Batch scoring, {results['rows']:,} entity rows (chunks of {results['chunk_rows']:,}, "
        f"ORT batches of {results['batch_rows']:,}; Ray: {results['workers']} workers)",
        "",
        "| engine | rows/s (end to end) | total s | offline join s (share) | scoring s (share) "
        "| scoring rows/s | other s (apply, checks, writes) |",
        "|---|---|---|---|---|---|---|",
    ]
    for engine in ("local", "ray"):
        r = results[engine]
        lines.append(
            f"| {engine} | {r['rows_per_s']:,} | {r['total_s']:.1f} | {r['join_s']:.1f} "
            f"({100 * r['join_share']:.0f}%) | {r['score_s']:.1f} ({100 * r['score_share']:.0f}%)"
            f" | {r['score_rows_per_s']:,} | {r['other_s']:.1f} |"
        )
    lines += ["", f"Identical scores between engines: {results['identical_scores']}", ""]
    return "\n".join(lines)
