"""``berth drift --url http://127.0.0.1:PORT``: the feature drift of a running transformer.

Reads the transformer's ``/metrics`` (``berth_transformer_feature_psi{feature}``,
``berth_transformer_drift_window_rows`` and ``berth_transformer_drift_min_rows``) and prints one
line per feature, largest PSI first, with the usual reading (< 0.1 stable, 0.1-0.25 moderate,
> 0.25 major shift); before the window holds the minimum rows, "not enough data (N of M rows)".
"""

from __future__ import annotations

import argparse

from berth.drift import DEFAULT_ALERT_PSI
from berth.errors import DependencyUnavailableError
from berth.scrape import scrape

PSI_METRIC = "berth_transformer_feature_psi"
ROWS_METRIC = "berth_transformer_drift_window_rows"
MIN_ROWS_METRIC = "berth_transformer_drift_min_rows"


def read_psi(url: str, timeout_s: float = 5.0) -> tuple[dict[str, float], int]:
    """(PSI per feature, rows in the window) from ``<url>/metrics``."""
    psi, rows, _ = read_drift(url, timeout_s)
    return psi, rows


def read_drift(url: str, timeout_s: float = 5.0) -> tuple[dict[str, float], int, int | None]:
    """(PSI per feature, rows in the window, rows needed for a PSI) from ``<url>/metrics``."""
    try:
        metrics = scrape(url, timeout_s)
    except OSError as exc:  # urllib.error.URLError included
        raise DependencyUnavailableError("transformer", f"{url}/metrics: {exc}") from exc
    psi = {s.labels["feature"]: s.value for s in metrics.select(PSI_METRIC)}
    rows = metrics.value(ROWS_METRIC)
    needed = metrics.value(MIN_ROWS_METRIC)
    return psi, int(rows or 0), None if needed is None else int(needed)


def reading(value: float, alert: float = DEFAULT_ALERT_PSI) -> str:
    if value > alert:
        return "MAJOR SHIFT"
    return "moderate" if value >= 0.1 else "stable"


def report(
    psi: dict[str, float], rows: int, alert: float = DEFAULT_ALERT_PSI, needed: int | None = None
) -> str:
    if needed is not None and rows < needed:
        return (
            f"not enough data ({rows} of {needed} rows): no PSI until the drift window holds "
            f"{needed} served rows (BERTH_TRANSFORMER_DRIFT_MIN_ROWS)"
        )
    if not psi:
        return (
            f"no drift data yet ({rows} rows in the window): serve some traffic, or the "
            "transformer runs without drift (BERTH_TRANSFORMER_DRIFT_WINDOW=0 or an artifact "
            "without reference histograms)"
        )
    width = max(len(name) for name in psi)
    lines = [f"{'feature':<{width}}  {'PSI':>7}  reading", f"{'-' * width}  -------  -------"]
    for name, value in sorted(psi.items(), key=lambda kv: -kv[1]):
        lines.append(f"{name:<{width}}  {value:7.4f}  {reading(value, alert)}")
    above = sum(1 for v in psi.values() if v > alert)
    lines.append(
        f"{rows} served rows in the window; {above} of {len(psi)} features above {alert:g}"
    )
    return "\n".join(lines)


def _drift(args: argparse.Namespace) -> int:
    psi, rows, needed = read_drift(args.url)
    print(report(psi, rows, args.alert, needed))
    return 1 if args.fail and any(v > args.alert for v in psi.values()) else 0


def add_drift_command(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    drift = sub.add_parser("drift", help="feature drift (PSI) of a running transformer")
    drift.add_argument("--url", required=True, help="the transformer, http://HOST:PORT")
    drift.add_argument(
        "--alert", type=float, default=DEFAULT_ALERT_PSI, help="PSI above which a feature drifts"
    )
    drift.add_argument("--fail", action="store_true", help="exit 1 when a feature drifts")
    drift.set_defaults(func=_drift)
