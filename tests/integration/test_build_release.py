"""The release path's data contract, slice metrics and metadata v2 on the real small build."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from berth.artifact import METADATA_FILE, ArtifactMetadata, verify_artifact, write_metadata
from berth.cli import main
from berth.modelbuild.slices import GATE, SLICES

pytestmark = pytest.mark.integration


def test_metadata_v2_carries_contract_and_slices(built: tuple[Path, Path]) -> None:
    _, artifact = built
    meta = verify_artifact(artifact)
    assert meta.schema_version == 2
    assert meta.data_contract is not None
    rules = {r.name: r for r in meta.data_contract.features}
    assert [r.name for r in meta.data_contract.features] == meta.feature_names
    assert (rules["rating"].min, rules["rating"].max) == (1.0, 5.0)
    assert rules["is_premium"].allowed == [0.0, 1.0]
    slices = meta.metrics.slices
    assert {s.slice for s in slices} == set(SLICES)
    assert {s.group for s in slices if s.slice == "pickup_hour_band"} <= {"night", "rush", "day"}
    for name in SLICES:  # every held-out row is in exactly one group of each slice
        assert sum(s.rows for s in slices if s.slice == name) == meta.metrics.heldout_rows
    assert meta.metrics.slice_gate == GATE
    card = (artifact / "MODEL_CARD.md").read_text()
    assert "## Slices (held-out rows)" in card
    assert "| is_premium | premium |" in card
    assert "## Data contract (`feature_repo/data_contract.yaml`)" in card
    assert "| `rating` | float32 | range [1, 5] | 0 |" in card


def test_version_1_artifact_still_loads(artifact_copy: Path) -> None:
    raw = json.loads((artifact_copy / METADATA_FILE).read_text())
    raw.pop("data_contract")
    raw["metrics"].pop("slices")
    raw["metrics"].pop("slice_gate")
    raw["schema_version"] = 1
    write_metadata(artifact_copy, ArtifactMetadata.model_validate(raw))
    meta = verify_artifact(artifact_copy)
    assert meta.schema_version == 1
    assert meta.data_contract is None and meta.metrics.slices == []
    assert main(["verify", str(artifact_copy)]) == 0


def test_build_refuses_training_data_that_breaks_the_contract(
    built: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """2% of the drivers' ratings are -1: every ride of theirs breaks `rating`'s range."""
    repo = Path(shutil.copytree(built[0], tmp_path / "repo"))
    profile_path = repo / "data" / "driver_profile.parquet"
    profile = pd.read_parquet(profile_path)
    bad = profile.sample(frac=0.02, random_state=3).index
    assert len(bad) >= 1
    profile.loc[bad, "rating"] = -1.0
    profile.to_parquet(profile_path, index=False)
    rides = pd.read_parquet(repo / "data" / "rides.parquet")
    broken_rows = int(rides["driver_id"].isin(profile.loc[bad, "driver_id"]).sum())
    out = tmp_path / "art"
    code = main(["build", "--repo", str(repo), "--output", str(out), "--step", "dataset"])
    err = capsys.readouterr().err
    assert code == 1
    assert f"feature rating breaks rule range [1, 5]: {broken_rows} rows" in err
    assert "refusing to package" in err
    assert not (tmp_path / "art.build" / "training.parquet").exists()


def test_slice_gate_breach_refuses_to_package_naming_the_slice(
    built: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The real evaluate step over the small build with a gate no model passes."""
    from berth.artifact import SliceGate
    from berth.modelbuild import evaluate

    repo, artifact = built
    shutil.copytree(artifact.with_name(artifact.name + ".build"), tmp_path / "art.build")
    strict = SliceGate(max_auc_gap=0.0001, max_int8_auc_drop=0.02, min_rows=1)
    monkeypatch.setattr(evaluate, "GATE", strict)
    out = tmp_path / "art"
    args = ["build", "--repo", str(repo), "--output", str(out), "--step", "evaluate"]
    assert main([*args, "--step", "package"]) == 1
    err = capsys.readouterr().err
    for name in SLICES:
        assert f"slice {name}: fp32 AUC gap" in err
    assert "refusing to package" in err
    assert not (out / METADATA_FILE).exists()
