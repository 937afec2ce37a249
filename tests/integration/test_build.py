"""The release path with the real Feast SDK, torch, ONNX and ONNX Runtime on small data."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd
import pytest
from onnx import TensorProto, helper

from berth.artifact import FP32_MODEL_FILE, MODEL_FILE, read_metadata, verify_artifact
from berth.cli import main
from berth.featurerepo import SQLITE_YAML, open_store, service_contract

pytestmark = pytest.mark.integration


def test_artifact_matches_feature_service(built: tuple[Path, Path]) -> None:
    repo, artifact = built
    meta = verify_artifact(artifact)
    contract = service_contract(open_store(repo, repo / SQLITE_YAML), "driver_ranking_v1")
    assert meta.feature_service == "driver_ranking_v1"
    assert [(f.name, f.dtype, f.view) for f in meta.features] == [
        (c.name, c.dtype, c.view) for c in contract
    ]
    assert len(meta.features) == 20
    assert meta.feature_names[-2:] == ["trip_distance_km", "pickup_hour"]
    assert meta.inputs[0].name == "features"
    assert meta.inputs[0].shape == [-1, 20]
    assert meta.outputs[0].name == "score"
    assert meta.outputs[0].shape == [-1]
    assert set(meta.files) == {"model.onnx", "model.fp32.onnx", "MODEL_CARD.md"}
    assert meta.metrics.auc_int8 >= 0.7
    assert meta.metrics.auc_fp32 - meta.metrics.auc_int8 <= 0.005
    assert meta.training_data.start < meta.training_data.end


def test_onnx_has_dynamic_batch_and_int8_tracks_fp32(built: tuple[Path, Path]) -> None:
    _, artifact = built
    proto = onnx.load(str(artifact / MODEL_FILE))
    assert any(n.op_type in {"QuantizeLinear", "DequantizeLinear"} for n in proto.graph.node)
    rng = np.random.default_rng(1)
    meta = read_metadata(artifact)
    center = np.array([f.default for f in meta.features], dtype=np.float32)
    sessions = [ort.InferenceSession(str(artifact / f)) for f in (MODEL_FILE, FP32_MODEL_FILE)]
    for batch in (1, 7, 130):
        rows = (center * rng.uniform(0.8, 1.2, (batch, len(center)))).astype(np.float32)
        p8, p32 = (s.run(None, {"features": rows})[0] for s in sessions)
        assert p8.shape == p32.shape == (batch,)
        assert np.all((p8 >= 0) & (p8 <= 1))
        assert np.max(np.abs(p8 - p32)) < 0.1


def test_training_rows_are_point_in_time(built: tuple[Path, Path]) -> None:
    """Hourly stats in the training set are the latest ones at or before each ride."""
    repo, artifact = built
    training = pd.read_parquet(artifact.with_name(artifact.name + ".build") / "training.parquet")
    stats = pd.read_parquet(repo / "data" / "driver_hourly_stats.parquet")
    sample = training.sample(50, random_state=0)
    for row in sample.itertuples():
        hour = row.event_timestamp.floor("h")
        expected = stats[(stats.driver_id == row.driver_id) & (stats.event_timestamp == hour)]
        assert float(expected["conv_rate"].iloc[0]) == pytest.approx(row.conv_rate, abs=0)


@pytest.mark.parametrize(
    "name", ["model.onnx", "model.fp32.onnx", "metadata.json", "MODEL_CARD.md"]
)
def test_changed_byte_fails_verify_naming_the_file(
    artifact_copy: Path, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["verify", str(artifact_copy)]) == 0
    path = artifact_copy / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    assert main(["verify", str(artifact_copy)]) == 1
    assert name in capsys.readouterr().err


def test_gate_refuses_to_package_a_degraded_int8_model(
    built: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo, artifact = built
    workdir = tmp_path / "art.build"
    shutil.copytree(artifact.with_name(artifact.name + ".build"), workdir)
    # A "quantized" model that ignores most features: its AUC is far below fp32's.
    graph = helper.make_graph(
        [helper.make_node("ReduceMean", ["features"], ["score"], keepdims=0, axes=[1])],
        "degraded",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", 20])],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, ["batch"])],
    )
    onnx.save(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]),
        str(workdir / MODEL_FILE),
    )
    code = main(
        [
            "build",
            "--repo",
            str(repo),
            "--output",
            str(tmp_path / "art"),
            "--step",
            "evaluate",
            "--step",
            "package",
        ]
    )
    assert code == 1
    assert "refusing to package" in capsys.readouterr().err
    assert not (tmp_path / "art" / "metadata.json").exists()
