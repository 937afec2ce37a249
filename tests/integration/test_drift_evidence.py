"""Drift needs evidence (issue 13): no PSI below BERTH_TRANSFORMER_DRIFT_MIN_ROWS (default 500),
`berth drift` says how far the window is, and PSI appears once it is full enough."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from typing import Any

import pytest

from berth.drift_report import read_drift

pytestmark = pytest.mark.integration


def rows(n: int, offset: int = 0) -> list[dict[str, Any]]:
    return [
        {
            "customer_id": 1 + (offset + i) % 120,
            "driver_id": 1001 + (offset + i) % 40,
            "trip_distance_km": 1.0 + (offset + i) % 25,
            "pickup_hour": (offset + i) % 24,
        }
        for i in range(n)
    ]


def predict(url: str, instances: list[dict[str, Any]]) -> None:
    request = urllib.request.Request(
        url, data=json.dumps({"instances": instances}).encode(), method="POST"
    )
    request.add_header("content-type", "application/json")
    with urllib.request.urlopen(request, timeout=10) as resp:
        assert resp.status == 200


def drift_cli(url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "berth.cli", "drift", "--url", url, "--fail"],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_no_psi_until_the_window_holds_the_minimum_rows(serving_stack: Any) -> None:
    """Found: after 12 rows every feature showed PSI 1.35-8.29 and `berth drift` printed
    MAJOR SHIFT."""
    with serving_stack(
        "drift-min", transformer_env={"BERTH_TRANSFORMER_DRIFT_REFRESH_S": "0"}
    ) as s:
        predict(s.infer_url, rows(12))
        psi, window, needed = read_drift(s.url)
        assert (psi, window, needed) == ({}, 12, 500)
        cli = drift_cli(s.url)
        assert cli.returncode == 0, cli.stdout + cli.stderr
        assert "not enough data (12 of 500 rows)" in cli.stdout
        assert "MAJOR SHIFT" not in cli.stdout
        for start in range(12, 500, 100):
            predict(s.infer_url, rows(min(100, 500 - start), start))
        psi, window, _ = read_drift(s.url)
        assert window == 500 and len(psi) == 20
        assert "not enough data" not in drift_cli(s.url).stdout
