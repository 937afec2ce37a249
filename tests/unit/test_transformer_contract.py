"""The start-up contract check and the predictor error mapping, without servers."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import grpc
import pytest

from berth.artifact import ArtifactMetadata, FeatureSpec
from berth.errors import (
    ContractMismatchError,
    DeadlineExceededError,
    DependencyUnavailableError,
    InvalidInputError,
    OverloadedError,
)
from berth.featurerepo import ContractFeature
from berth_transformer import contract
from berth_transformer.predictor_client import PredictorError, from_grpc_error, from_http_error

SERVICE = "driver_ranking_v1"
FEATURES = [
    ContractFeature("conv_rate", "float32", "driver_hourly_stats", timedelta(hours=2)),
    ContractFeature("total_trips", "int64", "driver_profile", timedelta(days=90)),
    ContractFeature("trip_distance_km", "float64", "ride_context", None),
]


def metadata(**props: str) -> dict[str, Any]:
    return {
        "name": "driver-ranking",
        "versions": ["v1-abc"],
        "platform": "onnxruntime",
        "inputs": [{"name": "features", "datatype": "FP32", "shape": [-1, 3]}],
        "outputs": [{"name": "score", "datatype": "FP32", "shape": [-1]}],
        "properties": {
            "feature_service": SERVICE,
            "model_version": "v1-abc",
            "features": "conv_rate,total_trips,trip_distance_km",
            "feature_dtypes": "float32,int64,float64",
            **props,
        },
    }


def test_matching_predictor_passes() -> None:
    model = contract.parse_metadata(metadata())
    assert model.version == "v1-abc"
    assert model.features == ["conv_rate", "total_trips", "trip_distance_km"]
    contract.check(SERVICE, FEATURES, model)


def test_grpc_trailing_metadata_carries_the_properties() -> None:
    meta = metadata()
    meta["trailing_metadata"] = meta.pop("properties")
    assert contract.parse_metadata(meta).feature_service == SERVICE


@pytest.mark.parametrize(
    ("props", "words"),
    [
        ({"feature_service": "driver_ranking_v2"}, "serves FeatureService 'driver_ranking_v2'"),
        ({"features": "total_trips,conv_rate,trip_distance_km"}, "another order"),
        ({"features": "conv_rate,total_trips"}, "2 entries, expected 3"),
        ({"features": "conv_rate,rating,trip_distance_km"}, "#1 is 'rating'"),
        ({"feature_dtypes": "float32,float32,float64"}, "total_trips: 'float32'"),
    ],
)
def test_any_difference_refuses(props: dict[str, str], words: str) -> None:
    with pytest.raises(ContractMismatchError, match="contract mismatch") as err:
        contract.check(SERVICE, FEATURES, contract.parse_metadata(metadata(**props)))
    assert words in str(err.value)


def test_input_tensor_shape_is_checked() -> None:
    meta = metadata()
    meta["inputs"][0]["shape"] = [-1, 4]
    assert "expected FP32 [-1, 3]" in " ".join(
        contract.differences(SERVICE, FEATURES, contract.parse_metadata(meta))
    )


def test_metadata_without_properties_refuses() -> None:
    meta = metadata()
    del meta["properties"]
    with pytest.raises(ContractMismatchError, match="lacks"):
        contract.parse_metadata(meta)


@pytest.mark.parametrize(
    ("code", "error", "status"),
    [
        (grpc.StatusCode.INVALID_ARGUMENT, InvalidInputError, 400),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, OverloadedError, 429),
        (grpc.StatusCode.UNAVAILABLE, DependencyUnavailableError, 503),
        (grpc.StatusCode.DEADLINE_EXCEEDED, DeadlineExceededError, 504),
        (grpc.StatusCode.INTERNAL, PredictorError, 500),
    ],
)
def test_grpc_errors_keep_their_meaning(code: grpc.StatusCode, error: type, status: int) -> None:
    exc = grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details="bad shape")
    mapped = from_grpc_error(exc)
    assert isinstance(mapped, error)
    assert mapped.status == status
    if status == 400:
        assert "bad shape" in mapped.client_message
    if status == 503:
        assert mapped.client_message == "predictor unavailable, retry later"


@pytest.mark.parametrize(
    ("http", "error", "status"),
    [
        (400, InvalidInputError, 400),
        (429, OverloadedError, 429),
        (503, DependencyUnavailableError, 503),
        (504, DeadlineExceededError, 504),
        (500, PredictorError, 500),
    ],
)
def test_http_errors_keep_their_meaning(http: int, error: type, status: int) -> None:
    mapped = from_http_error(http, b'{"error": "features: wrong shape"}', {"retry-after": "3"})
    assert isinstance(mapped, error)
    assert mapped.status == status
    if status == 400:
        assert "features: wrong shape" in mapped.client_message
    if status == 429:
        assert isinstance(mapped, OverloadedError)
        assert mapped.retry_after_s == 3
    if status == 500:
        assert mapped.client_message == "internal error"


def test_mounted_metadata_must_be_the_served_version() -> None:
    specs = [FeatureSpec(name=f.name, dtype=f.dtype, view=f.view, default=0.0) for f in FEATURES]
    other = ArtifactMetadata.model_construct(version="v1-other", features=specs)
    problems = contract.differences(SERVICE, FEATURES, contract.parse_metadata(metadata()), other)
    assert problems == ["mounted metadata.json is version 'v1-other', predictor serves 'v1-abc'"]
    same = ArtifactMetadata.model_construct(version="v1-abc", features=specs)
    contract.check(SERVICE, FEATURES, contract.parse_metadata(metadata()), same)
