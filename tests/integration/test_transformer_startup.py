"""The start-up contract check against a real predictor serving a real artifact."""

from __future__ import annotations

import importlib.util
import json
import shutil
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from berth.artifact import read_metadata
from berth.featurerepo import SQLITE_YAML
from berth.testing import LOOPBACK, ServerProcess, free_port

pytestmark = pytest.mark.integration
MODEL = "driver-ranking"
# Definitions and parquet data only: the registry records the original's absolute SQLite path,
# and applying a copy of it would drop the shared `built` repo's online tables.
FRESH = shutil.ignore_patterns("registry.db", "online_store.db")


@pytest.fixture(scope="module")
def v2_predictor(
    built: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Path, Path, int]]:
    """(feature repo, v2 artifact, gRPC port): a predictor serving driver_ranking_v2."""
    if importlib.util.find_spec("berth_predictor.__main__") is None:
        pytest.skip("predictors/berth_predictor has no __main__ yet")
    from berth.cli import main

    root = tmp_path_factory.mktemp("startup")
    repo = Path(shutil.copytree(built[0], root / "repo", ignore=FRESH))
    artifact = root / "artifact_v2"
    build = ["build", "--repo", str(repo), "--output", str(artifact)]
    assert main([*build, "--feature-service", "driver_ranking_v2"]) == 0
    http, grpc_port = free_port(), free_port()
    predictor = ServerProcess(
        [
            *("-m", "berth_predictor", "--model_name", MODEL, "--model_dir", str(artifact)),
            *("--http_port", str(http), "--grpc_port", str(grpc_port)),
        ],
        f"http://{LOOPBACK}:{http}/v2/models/{MODEL}/ready",
        log_path=root / "predictor.log",
    ).start()
    try:
        predictor.wait_ready(120)
        yield repo, artifact, grpc_port
    finally:
        predictor.stop()


def transformer(
    repo: Path, grpc_port: int, log: Path, **settings: str
) -> tuple[ServerProcess, int]:
    http = free_port()
    env = {
        "BERTH_TRANSFORMER_FEATURE_REPO": str(repo),
        "BERTH_TRANSFORMER_FEATURE_STORE_YAML": str(repo / SQLITE_YAML),
        "BERTH_TRANSFORMER_STARTUP_TIMEOUT_S": "60",
        **{f"BERTH_TRANSFORMER_{k.upper()}": v for k, v in settings.items()},
    }
    proc = ServerProcess(
        [
            *("-m", "berth_transformer", "--model_name", MODEL),
            *("--predictor_host", f"{LOOPBACK}:{grpc_port}", "--predictor_protocol", "grpc-v2"),
            *("--http_port", str(http), "--grpc_port", str(free_port())),
        ],
        f"http://{LOOPBACK}:{http}/v2/models/{MODEL}/ready",
        env=env,
        log_path=log,
    )
    return proc.start(), http


def test_transformer_refuses_a_predictor_of_another_feature_service(
    v2_predictor: tuple[Path, Path, int], built: tuple[Path, Path], tmp_path: Path
) -> None:
    repo, _, grpc_port = v2_predictor
    proc, _ = transformer(
        repo,
        grpc_port,
        tmp_path / "transformer.log",
        feature_service="driver_ranking_v1",
        model_metadata=str(built[1] / "metadata.json"),
    )
    try:
        assert proc.proc is not None
        code = proc.proc.wait(90)
    finally:
        proc.stop()
    assert code == 1
    lines = [json.loads(line) for line in proc.log().splitlines() if line.startswith("{")]
    refusals = [line for line in lines if line["event"] == "refusing to start"]
    assert len(refusals) == 1, proc.log()
    error = refusals[0]["error"]
    assert refusals[0]["level"] == "error"
    assert error.startswith("contract mismatch: ")
    assert "predictor serves FeatureService 'driver_ranking_v2', not 'driver_ranking_v1'" in error
    assert "feature list: 22 entries, expected 20" in error
    assert "Uvicorn running" not in proc.log()  # it never served


def test_transformer_starts_when_the_contract_matches(
    v2_predictor: tuple[Path, Path, int], tmp_path: Path
) -> None:
    repo, artifact, grpc_port = v2_predictor
    proc, http = transformer(
        repo,
        grpc_port,
        tmp_path / "transformer.log",
        feature_service="driver_ranking_v2",
        model_metadata=str(artifact / "metadata.json"),
        # The copied repo's online store was never materialized: every value is a fill value,
        # which the default all-missing status would answer with 503.
        all_missing_status="200",
    )
    try:
        proc.wait_ready(120)
        body = {
            "instances": [
                {"customer_id": 7, "driver_id": 1003, "trip_distance_km": 4.2, "pickup_hour": 18}
            ]
        }
        request = urllib.request.Request(
            f"http://{LOOPBACK}:{http}/v1/models/{MODEL}:predict",
            data=json.dumps(body).encode(),
            headers={"content-type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=15) as resp:
            answer = json.loads(resp.read())
    finally:
        proc.stop()
    assert answer["model_version"] == read_metadata(artifact).version
    assert len(answer["predictions"]) == 1
