"""The model artifact: metadata schema, content digests, and the verify call.

An artifact is a directory::

    model.onnx          int8 model (static QDQ or dynamic), what the predictor serves
    model.fp32.onnx     the exported float model, for parity checks and benchmarks
    metadata.json       :class:`ArtifactMetadata`, with the sha256 of every other file
    MODEL_CARD.md       human-readable summary generated from the metadata
    model.sig           optional: OpenSSF model-signing signature over every other file,
                        ``metadata.json`` included (``berth sign``, :mod:`berth.signing`);
                        kept out of the digest list

``metadata.json`` also carries a digest of its own bytes (``metadata_sha256``, computed with
that field zeroed), so a changed byte in any file of the artifact is detected by
:func:`verify_artifact`, which the predictor calls before it loads anything.

Schema version 2 adds ``data_contract`` (the values each feature may take, from
``feature_repo/data_contract.yaml``) and ``metrics.slices`` (per-slice quality); version-1
files still load (those fields empty).
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from berth.errors import ArtifactError

METADATA_FILE = "metadata.json"
MODEL_FILE = "model.onnx"
FP32_MODEL_FILE = "model.fp32.onnx"
MODEL_CARD_FILE = "MODEL_CARD.md"
SIGNATURE_FILE = "model.sig"
# Where `berth build` writes and `berth up` / `berth batch-score` read, relative to the project.
DEFAULT_ARTIFACT = Path("artifacts/driver-ranking")
_ZERO_DIGEST = "0" * 64

FeatureDtype = Literal["float32", "float64", "int64"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FeatureSpec(_Strict):
    """One model input column, in the FeatureService's order."""

    name: str
    dtype: FeatureDtype
    view: str = Field(description="Feast feature view (or on-demand view) it comes from")
    default: float = Field(description="Fill value for a missing or stale value (train median)")
    reference_edges: list[float] = Field(
        default_factory=list, description="Drift reference: training deciles (de-duplicated)"
    )
    reference_proportions: list[float] = Field(
        default_factory=list, description="Training share of each bin (len(edges) + 1 bins)"
    )


class TensorSpec(_Strict):
    """An ONNX input or output as Open Inference V2 metadata describes it."""

    name: str
    datatype: Literal["FP32"] = "FP32"
    shape: list[int]


class FeatureRule(_Strict):
    """The values one feature may take (its data contract): a range or a set, and how many
    values a training set may miss."""

    name: str
    dtype: FeatureDtype
    min: float | None = None
    max: float | None = None
    allowed: list[float] | None = None
    max_null_share: float = Field(default=0.0, ge=0, le=1)

    def describe(self) -> str:
        if self.allowed is not None:
            return "allowed {" + ", ".join(f"{v:g}" for v in self.allowed) + "}"
        lo = "-inf" if self.min is None else f"{self.min:g}"
        hi = "inf" if self.max is None else f"{self.max:g}"
        return f"range [{lo}, {hi}]"


class DataContract(_Strict):
    """Every model feature's rule, in input order; ``source`` names the file it came from."""

    source: str
    features: list[FeatureRule]


class SliceMetrics(_Strict):
    """Held-out quality inside one slice (e.g. ``pickup_hour_band`` = ``rush``)."""

    slice: str
    group: str
    rows: int
    positive_rate: float
    auc_fp32: float | None = Field(description="None when the slice holds one class only")
    auc_int8: float | None
    logloss_fp32: float
    logloss_int8: float
    ece_fp32: float = Field(description="expected calibration error, 10 equal-width bins")
    ece_int8: float


class SliceGate(_Strict):
    """The limits the slice gate enforced when the artifact was packaged."""

    max_auc_gap: float = Field(description="largest fp32 AUC gap between groups of a slice")
    max_int8_auc_drop: float = Field(description="largest fp32 - int8 AUC drop in any group")
    min_rows: int = Field(description="groups with fewer held-out rows are reported, not gated")


class ModelMetrics(_Strict):
    """Held-out (time-split) evaluation of the float and int8 models."""

    auc_fp32: float
    auc_int8: float
    logloss_fp32: float
    logloss_int8: float
    max_abs_diff: float = Field(description="max |p_fp32 - p_int8| on the held-out rows")
    heldout_rows: int
    slices: list[SliceMetrics] = Field(default_factory=list)
    slice_gate: SliceGate | None = None


class TrainingData(_Strict):
    """Where the training rows came from (point-in-time join of the FeatureService)."""

    start: datetime
    end: datetime
    train_rows: int
    heldout_rows: int
    positive_rate: float


class ArtifactMetadata(_Strict):
    """``metadata.json``: everything a server needs to serve the model and check contracts."""

    schema_version: Literal[1, 2] = 2
    name: str
    version: str
    feature_service: str
    features: list[FeatureSpec]
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    quantization: Literal["static", "dynamic"]
    metrics: ModelMetrics
    training_data: TrainingData
    data_contract: DataContract | None = Field(
        default=None, description="schema_version 2: the features' data contract"
    )
    created_at: datetime
    files: dict[str, str] = Field(description="file name -> sha256 of its bytes")
    metadata_sha256: str = _ZERO_DIGEST

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _self_digest(raw: bytes, recorded: str) -> str:
    return hashlib.sha256(raw.replace(recorded.encode(), _ZERO_DIGEST.encode(), 1)).hexdigest()


def write_metadata(directory: Path, metadata: ArtifactMetadata) -> ArtifactMetadata:
    """Record digests of every file in ``metadata.files`` and write ``metadata.json``."""
    files = {name: sha256_file(directory / name) for name in sorted(metadata.files)}
    unsigned = metadata.model_copy(update={"files": files, "metadata_sha256": _ZERO_DIGEST})
    raw = (unsigned.model_dump_json(indent=2) + "\n").encode()
    signed = hashlib.sha256(raw).hexdigest()
    (directory / METADATA_FILE).write_bytes(raw.replace(_ZERO_DIGEST.encode(), signed.encode(), 1))
    return unsigned.model_copy(update={"metadata_sha256": signed})


def read_metadata(directory: Path) -> ArtifactMetadata:
    """Parse ``metadata.json`` without checking digests (see :func:`verify_artifact`)."""
    path = Path(directory) / METADATA_FILE
    try:
        return ArtifactMetadata.model_validate_json(path.read_bytes())
    except FileNotFoundError as exc:
        raise ArtifactError(f"{path}: missing", file=METADATA_FILE) from exc
    except ValueError as exc:
        raise ArtifactError(f"{path}: not valid metadata ({exc})", file=METADATA_FILE) from exc


def verify_artifact(directory: Path | str) -> ArtifactMetadata:
    """Check every digest of the artifact; raise :class:`ArtifactError` naming the bad file."""
    directory = Path(directory)
    metadata = read_metadata(directory)
    raw = (directory / METADATA_FILE).read_bytes()
    if _self_digest(raw, metadata.metadata_sha256) != metadata.metadata_sha256:
        raise ArtifactError(
            f"{directory / METADATA_FILE}: content does not match its recorded sha256",
            file=METADATA_FILE,
        )
    for name, expected in metadata.files.items():
        path = directory / name
        if not path.is_file():
            raise ArtifactError(f"{path}: listed in metadata but missing", file=name)
        actual = sha256_file(path)
        if actual != expected:
            raise ArtifactError(
                f"{path}: sha256 {actual} does not match metadata ({expected})", file=name
            )
    return metadata
