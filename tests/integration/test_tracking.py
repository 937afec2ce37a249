"""``berth build`` against a real ``mlflow server`` (loopback, SQLite backend in a temp dir):
the run with its params, metrics and artifacts, a registered version, ``berth verify
models:/...``, an alias, and a rollout dry-run that resolves ``models:/`` to the storage URI
(through the real ``kubernetes`` client against the fake API server of test_rollout_cluster).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from berth.cli import main
from berth.registry import STORAGE_URI_TAG, resolve_storage_uri, set_alias
from tests.conftest import SMALL_DATA
from tests.integration import test_rollout_cluster as cluster
from tests.integration.test_rollout_cluster import FakeApiServer, berth, isvc
from tests.support.env import patched_env
from tests.support.servers import mlflow_executable, mlflow_server_process

# The fake Kubernetes API server and its kubeconfig, as test_rollout_cluster uses them.
api, kubeconfig, schema = cluster.api, cluster.kubeconfig, cluster.schema

pytestmark = [pytest.mark.integration, pytest.mark.slow]

NAME = "driver-ranking"
PUBLISHED = "s3://models/driver-ranking/from-registry"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The server's directory (``mlflow.db``, ``artifacts/``); MLFLOW_TRACKING_URI points at it."""
    if mlflow_executable() is None:
        pytest.skip("mlflow server not found: run scripts/setup.sh (it makes .venv-mlflow)")
    root = tmp_path_factory.mktemp("mlflow")
    process, url = mlflow_server_process(root)
    process.start()
    try:
        process.wait_ready(120)
        with patched_env(MLFLOW_TRACKING_URI=url):
            yield root
    finally:
        process.stop()


@pytest.fixture(scope="module")
def registered(server: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """One real small build logged to the server and registered as version 1."""
    from berth.featurerepo import copy_repo

    root = tmp_path_factory.mktemp("tracked")
    repo = copy_repo(root / "feature_repo")
    output = root / "artifact"
    argv = ["build", "--repo", str(repo), "--output", str(output), *SMALL_DATA]
    code = main([*argv, "--register", NAME, "--storage-uri", PUBLISHED])
    assert code == 0
    return repo, output


def test_the_build_is_a_run_with_params_metrics_and_artifacts(
    registered: tuple[Path, Path],
) -> None:
    from mlflow import MlflowClient

    client = MlflowClient()
    experiment = client.get_experiment_by_name("berth-build")
    (run,) = client.search_runs([experiment.experiment_id])
    params, metrics = run.data.params, run.data.metrics
    assert params["feature_service"] == "driver_ranking_v1"
    assert params["quantization"] == "static"
    assert (params["data.rides"], params["data.drivers"], params["data.seed"]) == (
        "6000",
        "40",
        "7",
    )
    assert params["train.hidden"] == "[256, 128]" and params["train.epochs"] == "6"
    evaluated = json.loads((registered[1].with_name("artifact.build") / "metrics.json").read_text())
    for key in ("auc_fp32", "auc_int8", "logloss_fp32", "logloss_int8"):
        assert metrics[key] == pytest.approx(evaluated[key])
    assert {f"seconds.{s}" for s in ("dataset", "train", "quantize", "package")} <= set(metrics)
    listed = {a.path for a in client.list_artifacts(run.info.run_id, "artifact")}
    assert {
        "artifact/model.onnx",
        "artifact/metadata.json",
        "artifact/MODEL_CARD.md",
    } <= listed
    (version,) = client.search_model_versions(f"name='{NAME}'")
    assert (version.version, version.run_id) == ("1", run.info.run_id)
    assert version.tags[STORAGE_URI_TAG] == PUBLISHED


def test_verify_models_uri_and_alias(
    registered: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["verify", f"models:/{NAME}/1"]) == 0
    assert f"at {PUBLISHED}" in capsys.readouterr().out
    assert set_alias(f"models:/{NAME}/1", "champion") == "1"
    assert main(["verify", f"models:/{NAME}@champion"]) == 0
    assert resolve_storage_uri(f"models:/{NAME}@champion") == PUBLISHED
    assert main(["verify", f"models:/{NAME}/7"]) == 1
    assert f"models:/{NAME}/7: not in the registry" in capsys.readouterr().err
    assert main(["verify", "models:/no/such/uri"]) == 1
    assert "expected models:/NAME/VERSION" in capsys.readouterr().err


def test_verify_names_a_tampered_file_in_the_registry(
    registered: tuple[Path, Path], server: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mlflow import MlflowClient

    client = MlflowClient()
    run_id = client.get_model_version(NAME, "1").run_id
    # mlflow-artifacts:/<experiment>/<run>/artifacts, under the server's --artifacts-destination
    stored = client.get_run(run_id).info.artifact_uri.removeprefix("mlflow-artifacts:/")
    card = server / "artifacts" / stored / "artifact" / "MODEL_CARD.md"
    original = card.read_bytes()
    card.write_bytes(original + b"tampered\n")
    try:
        assert main(["verify", f"models:/{NAME}/1"]) == 1
        assert "MODEL_CARD.md" in capsys.readouterr().err
    finally:
        card.write_bytes(original)


def test_rollout_dry_run_resolves_the_registered_version(
    registered: tuple[Path, Path],
    api: FakeApiServer,
    kubeconfig: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    api.put(isvc("Serverless"))
    code, out, err = berth(
        capsys, "canary", "--percent", "10", "--storage-uri", f"models:/{NAME}/1", "--dry-run"
    )
    assert code == 0, err
    assert PUBLISHED in out and "models:/" not in out
    code, _, err = berth(capsys, "promote", "--set-alias", "champion", "--dry-run")
    assert code == 1 and "--set-alias needs --storage-uri models:/" in err


def test_batch_score_takes_a_registered_version(
    registered: tuple[Path, Path], tmp_path: Path
) -> None:
    import pandas as pd

    repo, output = registered
    entities, scores = tmp_path / "entities.parquet", tmp_path / "scores.parquet"
    rides = pd.read_parquet(repo / "data" / "rides.parquet").head(200)
    rides.drop(columns=["accepted"]).to_parquet(entities, index=False)
    argv = ["batch-score", "--entities", str(entities), "--output", str(scores)]
    assert main([*argv, "--artifact", f"models:/{NAME}/1", "--repo", str(repo)]) == 0
    version = json.loads((output / "metadata.json").read_text())["version"]
    assert set(pd.read_parquet(scores)["model_version"]) == {version}
