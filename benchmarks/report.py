"""``report.md`` and ``latency.png`` from a ``results.json`` (``write``), and the summary table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from benchmarks.features_bench import READERS


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.{digits}f}"
    return str(value)


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows]
    return out


STACKS = ("berth", "baseline")
CHAINS = ("berth_grpc_hop", "berth_rest_hop", "tuned_peer", "floor")  # beside them, with peers
CHAIN_WHAT = {
    "berth_grpc_hop": "Berth, transformer->predictor over gRPC V2 instead of REST V2",
    "berth_rest_hop": "Berth, transformer->predictor over REST V2 instead of gRPC",
    "tuned_peer": "KServe transformer + Feast async SDK -> MLServer (pooled REST V2)",
    "floor": "bare ASGI + one pipelined Redis read + one ORT run",
}


def _key(bound_ms: float) -> str:
    return f"max_rps_p99_{bound_ms:g}ms".replace(".", "_")


def cap_note(entry: dict[str, Any] | None) -> str:
    """A rate's caveat from its sweep: capped (nothing above it failed: a lower bound), or the
    generator near a full core where it broke (the figure may be the generator's limit)."""
    sweep = (entry or {}).get("sweep")
    if not sweep:
        return ""
    bounds = sweep.get("config", {}).get("bounds_ms") or [float(b) for b in sweep["by_bound_ms"]]
    primary = sweep["by_bound_ms"].get(f"{min(bounds):g}", {})
    if primary.get("capped"):
        return " CAPPED: held at the sweep's top rate, a lower bound"
    gen = primary.get("generator_cores")
    if gen is not None and gen >= 0.9:
        why = "+".join(primary.get("failed_on", []))
        return f" (failed on {why} with the generator at {gen} cores: maybe its limit)"
    return ""


def _rate_key(results: dict[str, Any]) -> str:
    return _key(results["e2e"]["bound_ms"])


def summary_rows(results: dict[str, Any]) -> list[list[Any]]:
    """The required figures (and their context): key, value, what it is."""
    key = _rate_key(results)
    e2e, feats, pred = results["e2e"], results["features"], results["predictor"]
    rows: list[list[Any]] = [
        [
            f"e2e.berth.{key}",
            e2e["berth"][key],
            f"Berth, REST V1, 10 candidates, hop {e2e.get('hop_as_started', '?')}"
            + cap_note(e2e["berth"]),
        ],
        [
            f"e2e.baseline.{key}",
            e2e["baseline"][key],
            "baseline (Feast-sample design)" + cap_note(e2e["baseline"]),
        ],
        ["e2e.berth_over_baseline", e2e.get("berth_over_baseline"), "target >= 5"],
    ]
    for b in e2e.get("bounds_ms", [])[1:]:
        for stack in STACKS:
            if stack in e2e:
                rows.append([f"e2e.{stack}.{_key(b)}", e2e[stack].get(_key(b)), "looser bound"])
    rows += [
        ["features.berth_p50_ms", feats["berth_p50_ms"], "Berth's read, 10 candidates"],
        ["features.feast_sdk_p50_ms", feats["feast_sdk_p50_ms"], "get_online_features().to_dict()"],
        ["features.redis_floor_p50_ms", feats["redis_floor_p50_ms"], "redis-py pipeline (floor)"],
        ["features.berth_over_floor", feats.get("berth_over_floor"), "target <= 2"],
        [
            "features.berth_feast_source_p50_ms",
            feats.get("berth_feast_source_p50_ms"),
            "Berth's reader on Feast's SDK (other stores)",
        ],
        [
            "features.berth_cluster_p50_ms",
            feats.get("berth_cluster_p50_ms"),
            "Berth's read on a 3-master Redis Cluster",
        ],
        [
            "features.feast_sdk_cluster_p50_ms",
            feats.get("feast_sdk_cluster_p50_ms"),
            "get_online_features().to_dict() on the cluster",
        ],
        [
            "features.redis_cluster_floor_p50_ms",
            feats.get("redis_cluster_floor_p50_ms"),
            "redis-py RedisCluster pipeline (floor)",
        ],
        ["features.berth_cluster_over_floor", feats.get("berth_cluster_over_floor"), "target <= 2"],
        ["predictor.int8_rows_per_s_b64", pred["int8_rows_per_s_b64"], "ORT int8, 1 thread"],
        ["predictor.fp32_rows_per_s_b64", pred["fp32_rows_per_s_b64"], "ORT fp32, 1 thread"],
        ["predictor.torch_eager_rows_per_s_b64", pred.get("torch_eager_rows_per_s_b64"), ""],
        ["predictor.int8_over_fp32_b64", pred.get("int8_over_fp32_b64"), "target >= 1.5"],
    ]
    rows += _peer_summary_rows(results, key)
    if "shadow" in results:
        rows.append(
            ["shadow.p99_on_over_off", results["shadow"]["p99_on_over_off"],
             "Berth p99 with every request mirrored to a shadow / without (target <= 1.10)"]
        )  # fmt: skip
    return rows


def _peer_summary_rows(results: dict[str, Any], key: str) -> list[list[Any]]:
    e2e = results["e2e"]
    rows: list[list[Any]] = [
        ["e2e.berth.servers_cpu_ms_per_request", e2e["berth"].get("servers_cpu_ms_per_request"),
         "transformer + predictor CPU per request, busiest clean point (target <= 1.2)"],
    ]  # fmt: skip
    for chain in CHAINS:
        if chain in e2e:
            what = CHAIN_WHAT[chain] + cap_note(e2e[chain])
            rows.append([f"e2e.{chain}.{key}", e2e[chain].get(key), what])
    for name, what in (
        ("berth_over_tuned_peer", "target >= 2"),
        ("berth_share_of_floor", "Berth's max rps / the floor's"),
    ):
        if name in e2e:
            rows.append([f"e2e.{name}", e2e[name], what])
        by_bound = e2e.get(f"{name}_by_bound") or {}
        if by_bound:
            text = ", ".join(
                f"{k.replace('max_rps_p99_', '')}: {_fmt(v)}" for k, v in by_bound.items()
            )
            rows.append([f"e2e.{name}_by_bound", text, "the same ratio at each p99 bound"])
    peers = results.get("predictor_peers")
    if not peers:
        return rows
    for name, entry in peers.items():
        if not isinstance(entry, dict) or "settings" not in entry:
            continue
        if "unavailable" in entry:
            rows.append([f"predictor_peers.{name}", None, f"did not run: {entry['unavailable']}"])
            continue
        for proto in ("rest_v2", "grpc_v2", "rest_v2_binary"):
            if proto not in entry:
                continue
            got = entry[proto]
            rows.append([f"predictor_peers.{name}.{proto}.{key}", got.get(key),
                         "10-row requests" + cap_note(got)])  # fmt: skip
            if "rows_1" in got:
                rows.append(
                    [f"predictor_peers.{name}.{proto}.rows_1.{key}",
                     got["rows_1"].get(key), "1-row requests" + cap_note(got["rows_1"])]
                )  # fmt: skip
    for label, ratio in peers.get("berth_over", {}).items():
        looser = ", ".join(
            f"{k.replace('max_rps_p99_', '')}: {_fmt(v.get(label))}"
            for k, v in peers.get("berth_over_by_bound", {}).items()
        )
        what = "Berth's predictor / peer" + (f" (looser bounds: {looser})" if looser else "")
        rows.append([f"predictor_peers.berth_over.{label}", ratio, what])
    return rows


def summary_markdown(results: dict[str, Any]) -> str:
    return "\n".join(_table(["figure", "value", "what"], summary_rows(results)))


def _e2e_rows(sweep: dict[str, Any], name: str) -> list[list[Any]]:
    rows = []
    for p in sweep["points"]:
        lat, cpu = p["latency_ms"], p["cpu_ms_per_request"]
        rows.append(
            [
                name,
                p["spec"]["protocol"],
                p["spec"]["rate"],
                p["achieved_rps"],
                lat.get("p50"),
                lat.get("p90"),
                lat.get("p99"),
                lat.get("p99.9"),
                lat.get("max"),
                ", ".join(f"{k}: {v}" for k, v in p["errors"].items()) or "0",
                cpu.get("servers"),
                cpu.get("transformer"),
                cpu.get("predictor"),
                cpu.get("redis"),
                cpu.get("generator"),
                p["foreign_cpu_pct"],
                " ".join(f"{b}:{'y' if ok else 'n'}" for b, ok in p.get("holds_ms", {}).items())
                or ("yes" if p.get("holds") else "no"),
            ]
        )
    return rows


E2E_HEADER = [
    "stack",
    "proto",
    "offered rps",
    "achieved rps",
    "p50 ms",
    "p90 ms",
    "p99 ms",
    "p99.9 ms",
    "max ms",
    "errors",
    "CPU ms/req servers",
    "transformer",
    "predictor",
    "redis",
    "generator",
    "foreign CPU %",
    "holds p99 bound (ms)",
]


def markdown(results: dict[str, Any]) -> str:
    m = results["machine"]
    e2e, feats, pred = results["e2e"], results["features"], results["predictor"]
    lines = [
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
        *_table(
            ["target", "wanted", "Berth", "met"],
            [[t["name"], t["target"], t["value"], t["met"]] for t in results["targets"]],
        ),
        "",
        f"## End to end (REST V1, {e2e['candidates']} candidates, p99 bound {e2e['bound_ms']} ms)",
        "",
        f"Open loop ({e2e.get('arrivals', 'constant')} arrivals); latency from each request's "
        f"intended send time; at least {e2e['point_s']} s per point after warm-up (low rates "
        "run longer, for enough samples). CPU is CPU-seconds per completed request (ms) of each "
        "process tree; 'foreign' is CPU used by other processes on the machine. Stacks: `berth` "
        "as shipped (real entrypoints, default settings), `baseline` the KServe Feast-sample "
        "design.",
        "",
        *_table(
            E2E_HEADER,
            [row for st in STACKS + CHAINS if st in e2e for row in _e2e_rows(e2e[st]["sweep"], st)],
        ),
        "",
        *[
            f"- p99 <= {b:g} ms: Berth held **{_fmt(e2e['berth'].get(_key(b)))} rps**, the "
            f"baseline **{_fmt(e2e['baseline'].get(_key(b)))} rps** (ratio "
            f"{_fmt(e2e.get('berth_over_baseline_by_bound', {}).get(f'{b:g}'))})."
            for b in e2e.get("bounds_ms", [e2e["bound_ms"]])
        ],
        *[
            f"- `{st}` ({CHAIN_WHAT[st]}): **{_fmt(e2e[st].get(_key(e2e['bound_ms'])))} rps** "
            f"at p99 <= {e2e['bound_ms']:g} ms, servers' CPU "
            f"{_fmt(e2e[st].get('servers_cpu_ms_per_request'))} ms per request."
            for st in CHAINS
            if st in e2e
        ],
        "",
        "",
        "CPU cost per request and the rate at which it saturates a core (each server is one "
        "event loop) or the machine; less noisy than the latency bound on a shared machine, "
        "and an upper bound (no queueing allowance):",
        "",
        *_table(
            [
                "stack",
                "at rps",
                "CPU ms/req transformer",
                "predictor",
                "redis",
                "generator",
                "saturates at rps",
                "bottleneck",
            ],
            [
                [
                    st,
                    e2e[st]["cpu_bound"].get("at_rps"),
                    e2e[st]["cpu_bound"]["cpu_ms_per_request"].get("transformer"),
                    e2e[st]["cpu_bound"]["cpu_ms_per_request"].get("predictor"),
                    e2e[st]["cpu_bound"]["cpu_ms_per_request"].get("redis"),
                    e2e[st]["cpu_bound"]["cpu_ms_per_request"].get("generator"),
                    e2e[st]["cpu_bound"].get("max_rps"),
                    e2e[st]["cpu_bound"].get("bottleneck"),
                ]
                for st in STACKS + CHAINS
                if st in e2e and e2e[st].get("cpu_bound")
            ],
        ),
        "",
        "![latency vs load](latency.png)",
        "",
        "### Berth by protocol",
        "",
    ]
    lines += _protocol_lines(e2e["berth_protocols"])
    if "hop" in e2e:
        lines += ["", "### Transformer -> predictor hop: REST V2 (default) vs gRPC V2", ""]
        lines += _hop_lines(e2e["hop"], _key(e2e["bound_ms"]))
    if "stages" in results:
        lines += ["", "### Where one request's time goes (sequential, servers' own metrics)", ""]
        lines += _stages_lines(results["stages"])
    lines += [
        "",
        f"## Feature read: one request of {feats['candidates']} candidates",
        "",
        f"{feats['detail']['reads_per_reader']} sequential reads per reader, interleaved rounds; "
        f"{feats['detail']['redis_commands_per_read']} HMGETs per read (Feast's commands).",
        "",
        *_table(
            ["reader", "p50 ms", "p90 ms", "p99 ms", "p50 / floor"],
            [
                [
                    name,
                    feats["detail"][name]["p50_ms"],
                    feats["detail"][name]["p90_ms"],
                    feats["detail"][name]["p99_ms"],
                    feats["detail"][name]["p50_ms"] / feats["detail"]["redis_floor"]["p50_ms"],
                ]
                for name in READERS
                if name in feats["detail"]
            ],
        ),
        "",
        "Berth's direct Redis source returns the same matrix as its Feast-SDK source: "
        f"{_fmt(feats['detail'].get('berth_matches_feast_sdk'))}.",
        "",
        *_cluster_lines(feats["detail"].get("cluster")),
        "## Predictor alone (rows/s, 1 ORT/torch thread, interleaved rounds, median)",
        "",
    ]
    kernels = pred["kernels"]["rows_per_s"]
    models = sorted({m for v in kernels.values() for m in v})
    lines += _table(
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
            *_table(
                ["model", "int8 rows/s", "fp32 rows/s", "int8 / fp32"],
                [[k, v["int8"], v["fp32"], v["int8_over_fp32"]] for k, v in wide.items()],
            ),
        ]
    for note in pred["kernels"].get("notes", []):
        lines += ["", f"Note: {note}"]
    lines += ["", "### Batching on vs off (single-row gRPC V2 requests to the predictor)", ""]
    lines += _batching_lines(pred["batching"])
    if "predictor_peers" in results:
        lines += ["", "## Predictor peers (same V2 requests, same generator, same run)", ""]
        lines += _peer_lines(results["predictor_peers"])
    if "prediction_cache" in results:
        lines += ["", "## Prediction cache (experiment: would an LRU of scores pay?)", ""]
        lines += _cache_lines(results["prediction_cache"])
    if "shadow" in results:
        lines += ["", "## Shadow cost (primary latency, mirrored vs not)", ""]
        lines += _shadow_lines(results["shadow"])
    if "profile" in results:
        lines += ["", "## Profile (py-spy, CPU samples by library of the innermost frame)", ""]
        lines += _profile_lines(results["profile"])
    lines += ["", "## Notes", ""] + [f"- {n}" for n in results["notes"]]
    lines += ["", f"Steps (s): {json.dumps(results.get('steps_s', {}))}", ""]
    return "\n".join(lines)


def _stages_lines(stages: dict[str, Any]) -> list[str]:
    rows: list[list[Any]] = []
    for stack, entry in stages.items():
        rows.append([stack, "client (urllib, sequential)", "p50", entry["client_p50_ms"]])
        for server, series in entry["servers"].items():
            for name, value in series.items():
                rows.append([stack, server, name, value["mean_ms"]])
    return _table(["stack", "server", "histogram (mean of *_seconds)", "ms"], rows)


def _protocol_lines(protocols: dict[str, Any]) -> list[str]:
    rows = []
    for protocol in ("v1", "v2", "grpc-v2"):
        entry = protocols.get(protocol)
        if entry is None:
            continue
        if "sweep" in entry:
            rows += _e2e_rows(entry["sweep"], "berth")
        else:
            rows += _e2e_rows({"points": [entry["point"]]}, "berth")
    return _table(E2E_HEADER, rows)


def _batching_lines(batching: dict[str, Any]) -> list[str]:
    rows = []
    for mode in ("on", "off"):
        entry = batching.get(mode, {})
        points = entry.get("points") or entry.get("sweep", {}).get("points", [])
        for p in points:
            rows.append(
                [
                    mode,
                    p["spec"]["rate"],
                    p["achieved_rps"],
                    p["latency_ms"].get("p50"),
                    p["latency_ms"].get("p99"),
                    ", ".join(f"{k}: {v}" for k, v in p["errors"].items()) or "0",
                    p["cpu_ms_per_request"].get("predictor"),
                    p["foreign_cpu_pct"],
                ]
            )
    header = ["batching", "offered rps", "achieved rps", "p50 ms", "p99 ms", "errors",
              "predictor CPU ms/req", "foreign CPU %"]  # fmt: skip
    return _table(header, rows)


def _hop_lines(hop: dict[str, Any], key: str) -> list[str]:
    same = hop.get("same_rate", {})
    rows = [
        [proto, hop[proto].get(key), hop[proto].get("servers_cpu_ms_per_request"),
         same.get(proto, {}).get("servers_cpu_ms_per_request"),
         same.get(proto, {}).get("transformer_cpu_ms_per_request"),
         same.get(proto, {}).get("predictor_cpu_ms_per_request"),
         same.get(proto, {}).get("p99_ms"), same.get(proto, {}).get("errors")]
        for proto in ("grpc_v2", "rest_v2")
    ]  # fmt: skip
    header = ["hop", "max rps", "servers CPU ms/req (busiest clean point)",
              f"at {same.get('rate')} rps: servers CPU ms/req", "transformer", "predictor",
              "p99 ms", "errors"]  # fmt: skip
    return [
        "Berth end to end (REST V1 in, same requests), its transformer calling the same Berth "
        "predictor over REST V2 (`--predictor_protocol v2`, the default) or gRPC V2 "
        f"(`--predictor_protocol grpc-v2`); then {same.get('rounds')} alternating points of each "
        "at one rate, medians.",
        "",
        *_table(header, rows),
    ]


def _peer_lines(peers: dict[str, Any]) -> list[str]:
    key = _key(peers["bound_ms"])
    rows: list[list[Any]] = []
    notes: list[str] = []
    for name, entry in peers.items():
        if not isinstance(entry, dict) or "settings" not in entry:
            continue
        settings = ", ".join(f"{k}={v}" for k, v in entry["settings"].items())
        notes.append(f"- `{name}`: {settings}")
        if "unavailable" in entry:
            notes[-1] += f". **Did not run**: {entry['unavailable']}"
            continue
        for proto in ("rest_v2", "grpc_v2", "rest_v2_binary"):
            if proto not in entry:
                continue
            for rows_n, got in ((10, entry[proto]), (1, entry[proto].get("rows_1"))):
                if got is None:
                    continue
                cpu = got.get("cpu_ms_per_request") or {}
                rows.append([name, proto, rows_n, got.get(key), cpu.get("predictor")])
    ratios = [[k, v] for k, v in peers.get("berth_over", {}).items()]
    return [
        f"Max rps at p99 <= {peers['bound_ms']:g} ms per predictor, protocol and rows per "
        "request; CPU per request of the predictor's process tree at that point.",
        "",
        *_table(["predictor", "protocol", "rows", "max rps", "CPU ms/req"], rows),
        "",
        *_table(["Berth's predictor / peer", "ratio"], ratios),
        "",
        "Settings:",
        "",
        *notes,
    ]


def _cache_lines(cache: dict[str, Any]) -> list[str]:
    rows = [
        [mix, cache[mix]["distinct_requests"], run["capacity_rows"], run["row_hit_rate"],
         run["request_hit_rate"], cache[mix]["lookup_cpu_ms"],
         run["predictor_cpu_saved_ms_per_request"], run["net_saved_ms_per_request"]]
        for mix in ("benchmark", "skewed")
        if mix in cache
        for run in cache[mix]["by_capacity"]
    ]  # fmt: skip
    header = ["traffic", "distinct requests", "capacity (rows)", "row hit rate",
              "request hit rate", "lookup CPU ms/req", "predictor CPU saved ms/req",
              "net ms/req"]  # fmt: skip
    return [
        f"{cache['requests_per_mix']} requests per mix, keyed by model version + feature row "
        f"bytes; a request skips the predictor only if all its rows hit. Predictor CPU per "
        f"request (Berth, end to end): {_fmt(cache['predictor_cpu_ms'])} ms.",
        "",
        *_table(header, rows),
    ]


def _shadow_lines(shadow: dict[str, Any]) -> list[str]:
    return [
        f"Two Berth transformers on one primary predictor, one mirroring every request to a "
        f"shadow predictor (same artifact), alternating {shadow['point_s']} s open-loop points "
        f"at {shadow['rate']} rps, {shadow['rounds']} each; percentiles over each side's "
        f"requests pooled ({shadow['requests']['off']} / {shadow['requests']['on']}). "
        f"Shadow rows compared {shadow['shadow_rows_compared']:.0f}, dropped "
        f"{shadow['shadow_dropped']:.0f}, shadow errors {shadow['shadow_errors']:.0f}.",
        "",
        *_table(
            ["shadow", "p50 ms", "p99 ms", "primary errors"],
            [
                [name, shadow["p50_ms"][name], shadow["p99_ms"][name], shadow["errors"][name]]
                for name in ("off", "on")
            ],
        ),
        "",
        f"p99 on / off: **{_fmt(shadow['p99_on_over_off'], 3)}**; p50 on / off: "
        f"{_fmt(shadow['p50_on_over_off'], 3)}.",
    ]


def _profile_lines(prof: dict[str, Any]) -> list[str]:
    if "skipped" in prof:
        return [f"Skipped: {prof['skipped']}"]
    lines: list[str] = []
    for entry in prof.values():
        for name, summary in entry.items():
            if not isinstance(summary, dict) or "self_by_library_pct" not in summary:
                continue
            libs = ", ".join(f"{lib} {pct}%" for lib, pct in summary["self_by_library_pct"][:8])
            funcs = "; ".join(f"{fn} {pct}%" for fn, pct in summary["self_by_function_pct"][:6])
            samples = summary["samples"]
            lines += [
                f"- **{name}** at {entry['offered_rps']} rps ({samples} samples): {libs}.",
                f"  Hottest functions (self): {funcs}.",
            ]
    return lines


def _series(results: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The end-to-end sweeps and the predictor peers' 10-row sweeps, by legend label."""
    e2e = results["e2e"]
    series = {f"{st} (V1)": e2e[st]["sweep"] for st in STACKS + CHAINS if st in e2e}
    for protocol, entry in e2e.get("berth_protocols", {}).items():
        if isinstance(entry, dict) and "sweep" in entry and protocol != "v1":
            series[f"berth ({protocol})"] = entry["sweep"]
    predictors: dict[str, Any] = {}
    for name, entry in (results.get("predictor_peers") or {}).items():
        if isinstance(entry, dict) and "settings" in entry:
            for proto in ("rest_v2", "grpc_v2", "rest_v2_binary"):
                if "sweep" in entry.get(proto, {}):
                    predictors[f"{name} {proto}"] = entry[proto]["sweep"]
    return series, predictors


def _curves(ax: Any, series: dict[str, Any], bounds: list[float], title: str) -> None:
    import matplotlib.ticker

    colors = [f"C{i}" for i in range(10)]
    for (label, sweep), color in zip(series.items(), colors, strict=False):
        points = sorted(
            (p for p in sweep["points"] if p["latency_ms"]), key=lambda p: p["spec"]["rate"]
        )
        rates = [p["spec"]["rate"] for p in points]
        ax.plot(rates, [p["latency_ms"]["p99"] for p in points], "o-", color=color,
                label=f"{label} p99", markersize=3)  # fmt: skip
        ax.plot(rates, [p["latency_ms"]["p50"] for p in points], "x--", color=color, alpha=0.5,
                markersize=3)  # fmt: skip
    for bound in bounds:
        ax.axhline(bound, color="grey", linestyle=":", linewidth=1)
        ax.annotate(f"p99 bound {bound:g} ms", (0, bound), xycoords=("axes fraction", "data"),
                    fontsize=7, color="grey", va="bottom")  # fmt: skip
    ax.set_xscale("log")
    ax.set_yscale("log")
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
        axis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("offered load (requests/s, open loop)")
    ax.set_ylabel("latency from intended send time (ms): p99 o-, p50 x--")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)


def plot(results: dict[str, Any], path: Path) -> None:
    """p50 and p99 vs offered rate for every swept series (end to end; the predictor peers
    beside it when they ran), the bounds as lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    e2e = results["e2e"]
    series, predictors = _series(results)
    panels = 2 if predictors else 1
    fig, axes = plt.subplots(1, panels, figsize=(8 * panels, 5.5), dpi=110, squeeze=False)
    bounds = e2e.get("bounds_ms", [e2e["bound_ms"]])
    _curves(axes[0][0], series, bounds,
            f"End to end, {e2e['candidates']} candidates per request")  # fmt: skip
    if predictors:
        _curves(axes[0][1], predictors, [results["predictor_peers"]["bound_ms"]],
                "Predictors alone, 10-row V2 requests")  # fmt: skip
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write(results: dict[str, Any], out: Path) -> None:
    plot(results, out / "latency.png")
    (out / "report.md").write_text(markdown(results))


def _cluster_lines(cluster: dict[str, Any] | None) -> list[str]:
    """The same read on a Redis Cluster (``benchmarks.features_cluster``), if it ran."""
    from benchmarks.features_cluster import CLUSTER_READERS

    if not cluster:
        return []
    floor = cluster["redis_cluster_floor"]["p50_ms"]
    rows = [
        [name, *(cluster[name][f"p{q}_ms"] for q in (50, 90, 99)), cluster[name]["p50_ms"] / floor]
        for name in CLUSTER_READERS
        if name in cluster
    ]
    return [
        f"On a {cluster['masters']}-master Redis Cluster (loopback), the same requests:",
        "",
        *_table(["reader", "p50 ms", "p90 ms", "p99 ms", "p50 / cluster floor"], rows),
        "",
        "Berth's cluster read returns the same matrix as its Feast-SDK source: "
        f"{_fmt(cluster.get('berth_cluster_matches_feast_sdk'))}.",
        "",
    ]
