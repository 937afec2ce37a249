"""``latency.png``: p50 and p99 against offered load for every swept series."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.report_format import CHAINS, STACKS


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
    import matplotlib
    import matplotlib.ticker

    colors = matplotlib.colormaps["tab20"].colors  # more series than the default cycle's 10
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
