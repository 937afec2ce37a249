"""Sections of ``report.md`` beside the end-to-end tables, one function each."""

from __future__ import annotations

from typing import Any

from benchmarks.report_format import E2E_HEADER, e2e_rows, fmt, rate_key, table


def stages_lines(stages: dict[str, Any]) -> list[str]:
    rows: list[list[Any]] = []
    for stack, entry in stages.items():
        rows.append([stack, "client (urllib, sequential)", "p50", entry["client_p50_ms"]])
        for server, series in entry["servers"].items():
            for name, value in series.items():
                rows.append([stack, server, name, value["mean_ms"]])
    return table(["stack", "server", "histogram (mean of *_seconds)", "ms"], rows)


def protocol_lines(protocols: dict[str, Any]) -> list[str]:
    rows = []
    for protocol in ("v1", "v2", "grpc-v2"):
        entry = protocols.get(protocol)
        if entry is None:
            continue
        if "sweep" in entry:
            rows += e2e_rows(entry["sweep"], "berth")
        else:
            rows += e2e_rows({"points": [entry["point"]]}, "berth")
    return table(E2E_HEADER, rows)


def batching_lines(batching: dict[str, Any]) -> list[str]:
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
    return table(header, rows)


def hop_lines(hop: dict[str, Any], key: str) -> list[str]:
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
        *table(header, rows),
    ]


def peer_lines(peers: dict[str, Any]) -> list[str]:
    key = rate_key(peers["bound_ms"])
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
        *table(["predictor", "protocol", "rows", "max rps", "CPU ms/req"], rows),
        "",
        *table(["Berth's predictor / peer", "ratio"], ratios),
        "",
        "Settings:",
        "",
        *notes,
    ]


def cache_lines(cache: dict[str, Any]) -> list[str]:
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
        f"request (Berth, end to end): {fmt(cache['predictor_cpu_ms'])} ms.",
        "",
        *table(header, rows),
    ]


def shadow_lines(shadow: dict[str, Any]) -> list[str]:
    return [
        f"Two Berth transformers on one primary predictor, one mirroring every request to a "
        f"shadow predictor (same artifact), alternating {shadow['point_s']} s open-loop points "
        f"at {shadow['rate']} rps, {shadow['rounds']} each; percentiles over each side's "
        f"requests pooled ({shadow['requests']['off']} / {shadow['requests']['on']}). "
        f"Shadow rows compared {shadow['shadow_rows_compared']:.0f}, dropped "
        f"{shadow['shadow_dropped']:.0f}, shadow errors {shadow['shadow_errors']:.0f}.",
        "",
        *table(
            ["shadow", "p50 ms", "p99 ms", "primary errors"],
            [
                [name, shadow["p50_ms"][name], shadow["p99_ms"][name], shadow["errors"][name]]
                for name in ("off", "on")
            ],
        ),
        "",
        f"p99 on / off: **{fmt(shadow['p99_on_over_off'], 3)}**; p50 on / off: "
        f"{fmt(shadow['p50_on_over_off'], 3)}.",
    ]


def profile_lines(prof: dict[str, Any]) -> list[str]:
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


def cluster_lines(cluster: dict[str, Any] | None) -> list[str]:
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
        *table(["reader", "p50 ms", "p90 ms", "p99 ms", "p50 / cluster floor"], rows),
        "",
        "Berth's cluster read returns the same matrix as its Feast-SDK source: "
        f"{fmt(cluster.get('berth_cluster_matches_feast_sdk'))}.",
        "",
    ]
