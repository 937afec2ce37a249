"""``report.md`` and ``latency.png`` from a ``results.json`` (``write``), and the summary table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from benchmarks.features_bench import READERS
from benchmarks.report_format import (
    CHAIN_WHAT,
    CHAINS,
    E2E_HEADER,
    STACKS,
    e2e_rows,
    fmt,
    rate_key,
    table,
)
from benchmarks.report_plot import plot
from benchmarks.report_sections import (
    batching_lines,
    cache_lines,
    cluster_lines,
    hop_lines,
    peer_lines,
    profile_lines,
    protocol_lines,
    shadow_lines,
    stages_lines,
)
from benchmarks.report_summary import cap_note, summary_markdown

__all__ = ["cap_note", "markdown", "plot", "summary_markdown", "write"]


def markdown(results: dict[str, Any]) -> str:
    e2e = results["e2e"]
    lines = _head_lines(results) + _e2e_lines(e2e) + _cpu_bound_lines(e2e)
    lines += protocol_lines(e2e["berth_protocols"])
    if "hop" in e2e:
        lines += ["", "### Transformer -> predictor hop: REST V2 (default) vs gRPC V2", ""]
        lines += hop_lines(e2e["hop"], rate_key(e2e["bound_ms"]))
    if "stages" in results:
        lines += ["", "### Where one request's time goes (sequential, servers' own metrics)", ""]
        lines += stages_lines(results["stages"])
    lines += _features_lines(results["features"])
    lines += _predictor_lines(results["predictor"])
    if "predictor_peers" in results:
        lines += ["", "## Predictor peers (same V2 requests, same generator, same run)", ""]
        lines += peer_lines(results["predictor_peers"])
    if "prediction_cache" in results:
        lines += ["", "## Prediction cache (experiment: would an LRU of scores pay?)", ""]
        lines += cache_lines(results["prediction_cache"])
    if "shadow" in results:
        lines += ["", "## Shadow cost (primary latency, mirrored vs not)", ""]
        lines += shadow_lines(results["shadow"])
    if "profile" in results:
        lines += ["", "## Profile (py-spy, CPU samples by library of the innermost frame)", ""]
        lines += profile_lines(results["profile"])
    lines += ["", "## Notes", ""] + [f"- {n}" for n in results["notes"]]
    lines += ["", f"Steps (s): {json.dumps(results.get('steps_s', {}))}", ""]
    return "\n".join(lines)


def write(results: dict[str, Any], out: Path) -> None:
    plot(results, out / "latency.png")
    (out / "report.md").write_text(markdown(results))


def _head_lines(results: dict[str, Any]) -> list[str]:
    """Title, command, machine, the summary and the targets."""
    m = results["machine"]
    return [
        "# Berth benchmark report",
        "",
        f"Command: `{results['command']}` (mode `{results['mode']}`), "
        f"started {results['started_at']}, took {results['duration_s']} s.",
        "",
        f"Machine: {m['cores_logical']} logical cores ({m['cpu_model']}), {m['memory_gib']} GiB, "
        f"{m['platform']}; Python {m['python']}, onnxruntime {m['versions']['onnxruntime']}, "
        f"kserve {m['versions']['kserve']}, feast {m['versions']['feast']}, "
        f"redis-server {m['redis_server']}. Load average at start "
        f"{m['load_average_at_start']}, at end {m.get('load_average_at_end')}.",
        "",
        "## Summary",
        "",
        summary_markdown(results),
        "",
        "## Targets",
        "",
        *table(
            ["target", "wanted", "Berth", "met"],
            [[t["name"], t["target"], t["value"], _met(t)] for t in results["targets"]],
        ),
        "",
    ]


def _met(target: dict[str, Any]) -> str:
    return f"{target['met']} ({target['note']})" if "note" in target else str(target["met"])


def _e2e_lines(e2e: dict[str, Any]) -> list[str]:
    """The end-to-end points of every chain, and what each held at each bound."""
    return [
        f"## End to end (REST V1, {e2e['candidates']} candidates, p99 bound {e2e['bound_ms']} ms)",
        "",
        f"Open loop ({e2e.get('arrivals', 'constant')} arrivals); latency from each request's "
        f"intended send time; at least {e2e['point_s']} s per point after warm-up (low rates "
        "run longer, for enough samples). CPU is CPU-seconds per completed request (ms) of each "
        "process tree; 'foreign' is CPU used by other processes on the machine. Stacks: `berth` "
        "as shipped (real entrypoints, default settings), `baseline` the KServe Feast-sample "
        "design.",
        "",
        *table(
            E2E_HEADER,
            [row for st in STACKS + CHAINS if st in e2e for row in e2e_rows(e2e[st]["sweep"], st)],
        ),
        "",
        *[
            f"- p99 <= {b:g} ms: Berth held **{fmt(e2e['berth'].get(rate_key(b)))} rps**, the "
            f"baseline **{fmt(e2e['baseline'].get(rate_key(b)))} rps** (ratio "
            f"{fmt(e2e.get('berth_over_baseline_by_bound', {}).get(f'{b:g}'))})."
            for b in e2e.get("bounds_ms", [e2e["bound_ms"]])
        ],
        *[
            f"- `{st}` ({CHAIN_WHAT[st]}): **{fmt(e2e[st].get(rate_key(e2e['bound_ms'])))} rps** "
            f"at p99 <= {e2e['bound_ms']:g} ms, servers' CPU "
            f"{fmt(e2e[st].get('servers_cpu_ms_per_request'))} ms per request."
            for st in CHAINS
            if st in e2e
        ],
        "",
        "",
    ]


def _cpu_bound_lines(e2e: dict[str, Any]) -> list[str]:
    """Each chain's CPU cost per request and the rate it saturates at; then the plot."""
    header = ["stack", "at rps", "CPU ms/req transformer", "predictor", "redis", "generator",
              "saturates at rps", "bottleneck"]  # fmt: skip
    rows = []
    for st in STACKS + CHAINS:
        if st in e2e and e2e[st].get("cpu_bound"):
            bound = e2e[st]["cpu_bound"]
            cpu = bound["cpu_ms_per_request"]
            rows.append([st, bound.get("at_rps"), cpu.get("transformer"), cpu.get("predictor"),
                         cpu.get("redis"), cpu.get("generator"), bound.get("max_rps"),
                         bound.get("bottleneck")])  # fmt: skip
    return [
        "CPU cost per request and the rate at which it saturates a core (each server is one "
        "event loop) or the machine; less noisy than the latency bound on a shared machine, "
        "and an upper bound (no queueing allowance):",
        "",
        *table(header, rows),
        "",
        "![latency vs load](latency.png)",
        "",
        "### Berth by protocol",
        "",
    ]


def _features_lines(feats: dict[str, Any]) -> list[str]:
    """One request's feature read per reader, on one Redis and (if it ran) on a cluster."""
    detail = feats["detail"]
    return [
        "",
        f"## Feature read: one request of {feats['candidates']} candidates",
        "",
        f"{detail['reads_per_reader']} sequential reads per reader, interleaved rounds; "
        f"{detail['redis_commands_per_read']} HMGETs per read (Feast's commands).",
        "",
        *table(
            ["reader", "p50 ms", "p90 ms", "p99 ms", "p50 / floor"],
            [
                [
                    name,
                    detail[name]["p50_ms"],
                    detail[name]["p90_ms"],
                    detail[name]["p99_ms"],
                    detail[name]["p50_ms"] / detail["redis_floor"]["p50_ms"],
                ]
                for name in READERS
                if name in detail
            ],
        ),
        "",
        "Berth's direct Redis source returns the same matrix as its Feast-SDK source: "
        f"{fmt(detail.get('berth_matches_feast_sdk'))}.",
        "",
        *cluster_lines(detail.get("cluster")),
    ]


def _predictor_lines(pred: dict[str, Any]) -> list[str]:
    """The predictor alone: rows/s by batch and model, other widths, batching on vs off."""
    lines = ["## Predictor alone (rows/s, 1 ORT/torch thread, interleaved rounds, median)", ""]
    kernels = pred["kernels"]["rows_per_s"]
    models = sorted({m for v in kernels.values() for m in v})
    lines += table(
        ["batch", *models, "int8 / fp32"],
        [
            [int(b), *(v.get(m) for m in models), v["int8"] / v["fp32"]]
            for b, v in sorted(kernels.items(), key=lambda kv: int(kv[0]))
        ],
    )
    wide = pred["kernels"].get("wide_models_b64")
    if wide:
        lines += [
            "",
            "Other MLP widths built with the project's release steps (static QDQ calibrated "
            "on the training rows), batch 64:",
            "",
            *table(
                ["model", "int8 rows/s", "fp32 rows/s", "int8 / fp32"],
                [[k, v["int8"], v["fp32"], v["int8_over_fp32"]] for k, v in wide.items()],
            ),
        ]
    for note in pred["kernels"].get("notes", []):
        lines += ["", f"Note: {note}"]
    lines += ["", "### Batching on vs off (single-row gRPC V2 requests to the predictor)", ""]
    return lines + batching_lines(pred["batching"])
