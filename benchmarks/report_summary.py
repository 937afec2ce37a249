"""The summary table of ``report.md`` (the required figures) and a rate's caveat."""

from __future__ import annotations

from typing import Any

from benchmarks.report_format import CHAIN_WHAT, CHAINS, STACKS, fmt, rate_key, table


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
    return rate_key(results["e2e"]["bound_ms"])


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
    rows += [
        [f"e2e.{stack}.{rate_key(b)}", e2e[stack].get(rate_key(b)), "looser bound"]
        for b in e2e.get("bounds_ms", [])[1:]
        for stack in STACKS
        if stack in e2e
    ]
    rows += _component_rows(feats, pred)
    rows += _peer_summary_rows(results, key)
    if "shadow" in results:
        rows.append(
            ["shadow.p99_on_over_off", results["shadow"]["p99_on_over_off"],
             "Berth p99 with every request mirrored to a shadow / without (target <= 1.10)"]
        )  # fmt: skip
    return rows


def _component_rows(feats: dict[str, Any], pred: dict[str, Any]) -> list[list[Any]]:
    """The feature read and the predictor alone."""
    return [
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
                f"{k.replace('max_rps_p99_', '')}: {fmt(v)}" for k, v in by_bound.items()
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
            f"{k.replace('max_rps_p99_', '')}: {fmt(v.get(label))}"
            for k, v in peers.get("berth_over_by_bound", {}).items()
        )
        what = (
            "Berth's share of a bare server's rate on the same libraries"
            if label.startswith("floor.")
            else "Berth's predictor / peer"
        ) + (f" (looser bounds: {looser})" if looser else "")
        rows.append([f"predictor_peers.berth_over.{label}", ratio, what])
    return rows


def summary_markdown(results: dict[str, Any]) -> str:
    return "\n".join(table(["figure", "value", "what"], summary_rows(results)))
