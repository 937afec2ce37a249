"""The wire contract's OIP properties: written from an artifact, read from REST or gRPC answers."""

from __future__ import annotations

import pytest

from berth.errors import ContractMismatchError
from berth.wire import PROPERTY_KEYS, ModelProperties

PROPS = {
    "feature_service": "fs_v1",
    "model_version": "v7",
    "features": "a,b",
    "feature_dtypes": "int64,float32",
}


def test_round_trip_through_the_properties_map() -> None:
    parsed = ModelProperties.from_metadata({"properties": PROPS})
    assert parsed.features == ["a", "b"] and parsed.feature_dtypes == ["int64", "float32"]
    assert parsed.to_properties() == PROPS
    assert tuple(PROPS) == PROPERTY_KEYS


def test_grpc_answers_carry_the_keys_as_trailing_metadata() -> None:
    meta = {"versions": ["v7"], "trailing_metadata": {**PROPS, "model_version": ""}}
    assert ModelProperties.from_metadata(meta).model_version == "v7"  # from versions


def test_a_missing_key_is_a_contract_mismatch_naming_it() -> None:
    props = {k: v for k, v in PROPS.items() if k != "feature_dtypes"}
    with pytest.raises(ContractMismatchError, match="feature_dtypes"):
        ModelProperties.from_metadata({"properties": props})
