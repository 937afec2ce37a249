"""Request validation: V1 instances and V2 tensors become columns; errors name the field."""

from __future__ import annotations

import numpy as np
import pytest
from kserve.protocol.infer_type import InferInput

from berth.errors import InvalidInputError
from berth_transformer.schema import _plain, _validated, parse_v1, parse_v2

ROW = {"customer_id": 7, "driver_id": 1003, "trip_distance_km": 4.2, "pickup_hour": 18}


def v2(**overrides: object) -> list[InferInput]:
    tensors = {
        "customer_id": InferInput("customer_id", [2], "INT64", [7, 7]),
        "driver_id": InferInput("driver_id", [2], "INT64", [1003, 1004]),
        "trip_distance_km": InferInput("trip_distance_km", [2], "FP32", [4.2, 1.5]),
        "pickup_hour": InferInput("pickup_hour", [2], "INT64", [18, 9]),
    }
    for name, tensor in overrides.items():
        if tensor is None:
            del tensors[name]
        else:
            tensors[name] = tensor  # type: ignore[assignment]
    return list(tensors.values())


def test_v1_instances_become_columns_in_order() -> None:
    rows = [ROW, {**ROW, "driver_id": 1001, "trip_distance_km": 10}]
    c = parse_v1({"instances": rows}, max_candidates=10)
    assert c.driver_id.tolist() == [1003, 1001]
    assert c.customer_id.dtype == np.int64
    assert c.trip_distance_km.dtype == np.float32
    assert c.trip_distance_km[0] == np.float32(4.2)
    assert c.entity_rows()["trip_distance_km"][1] == 10.0


def test_v1_accepts_json_bytes() -> None:
    assert (
        len(
            parse_v1(
                b'{"instances": [{"customer_id": 1, "driver_id": 2, '
                b'"trip_distance_km": 1.0, "pickup_hour": 0}]}',
                5,
            )
        )
        == 1
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (
            {"instances": [{k: v for k, v in ROW.items() if k != "driver_id"}]},
            "instances[0].driver_id",
        ),
        ({"instances": [ROW, {**ROW, "pickup_hour": 24}]}, "instances[1].pickup_hour"),
        ({"instances": [{**ROW, "customer_id": "7"}]}, "instances[0].customer_id"),
        ({"instances": [{**ROW, "driver_id": True}]}, "instances[0].driver_id"),
        ({"instances": [{**ROW, "driver_id": 1003.5}]}, "instances[0].driver_id"),
        ({"instances": [{**ROW, "trip_distance_km": -1}]}, "instances[0].trip_distance_km"),
        ({"instances": [{**ROW, "trip_distance_km": "4.2"}]}, "instances[0].trip_distance_km"),
        ({"instances": [{**ROW, "surge": 1.0}]}, "instances[0].surge"),
        ({"instances": []}, "instances"),
        ({"instances": [ROW] * 4}, "instances"),
        ({"instances": "x"}, "instances"),
        ({"inputs": [ROW]}, "inputs"),
        ([ROW], "instances"),
        (b"not json", "instances"),
    ],
)
def test_v1_errors_name_the_field(body: object, field: str) -> None:
    with pytest.raises(InvalidInputError) as err:
        parse_v1(body, max_candidates=3)
    assert err.value.status == 400
    assert err.value.field == field
    assert err.value.client_message.startswith(field)


def test_v2_tensors_become_columns() -> None:
    c = parse_v2(v2(), max_candidates=10)
    assert c.driver_id.tolist() == [1003, 1004]
    assert c.trip_distance_km.dtype == np.float32
    assert c.pickup_hour.tolist() == [18, 9]


def test_v2_accepts_raw_binary_contents() -> None:
    raw = InferInput("driver_id", [2], "INT64")
    raw._raw_data = np.array([5, 6], dtype=np.int64).tobytes()
    assert parse_v2(v2(driver_id=raw), 10).driver_id.tolist() == [5, 6]


@pytest.mark.parametrize(
    ("overrides", "field", "words"),
    [
        ({"pickup_hour": None}, "pickup_hour", "required"),
        ({"driver_id": InferInput("driver_id", [2], "FP32", [1.0, 2.0])}, "driver_id", "INT64"),
        ({"driver_id": InferInput("driver_id", [1, 2], "INT64", [1, 2])}, "driver_id", "1-D"),
        ({"driver_id": InferInput("driver_id", [3], "INT64", [1, 2, 3])}, "driver_id", "differs"),
        ({"driver_id": InferInput("driver_id", [2], "INT64", [1, 2, 3])}, "driver_id", "shape"),
        ({"surge": InferInput("surge", [2], "FP32", [1.0, 1.0])}, "surge", "unknown"),
        ({"pickup_hour": InferInput("pickup_hour", [2], "INT64", [1, 30])}, "pickup_hour", "0..23"),
        (
            {"trip_distance_km": InferInput("trip_distance_km", [2], "FP32", [1.0, float("nan")])},
            "trip_distance_km",
            "finite",
        ),
        ({"customer_id": InferInput("customer_id", [2], "INT64", [-1, 1])}, "customer_id", ">= 0"),
    ],
)
def test_v2_errors_name_the_field(overrides: dict[str, object], field: str, words: str) -> None:
    with pytest.raises(InvalidInputError) as err:
        parse_v2(v2(**overrides), max_candidates=10)
    assert err.value.field == field
    assert words in err.value.client_message


def test_v2_caps_candidates() -> None:
    with pytest.raises(InvalidInputError, match="at most 1 candidates"):
        parse_v2(v2(), max_candidates=1)


EDGES: list[object] = [
    0,
    1,
    23,
    24,
    -1,
    2**63 - 1,
    2**63,
    0.0,
    -0.0,
    4.2,
    1e-300,
    3.4028234663852886e38,  # float32's largest
    3.40282350e38,  # above it, rounds down to it: the validated path accepts it
    3.4028235677973366e38,  # half-way to the next: rounds to inf, refused
    3.5e38,
    float("inf"),
    float("nan"),
    True,
    None,
    "4",
]


@pytest.mark.parametrize("field", list(ROW))
@pytest.mark.parametrize("value", EDGES)
def test_v1_plain_path_is_the_validated_rule(field: str, value: object) -> None:
    """The one-pass path (`_plain`) accepts only what the pydantic path accepts, with the
    same columns; everything else it leaves to that path, which names the fault."""
    instances = [ROW, {**ROW, field: value}]
    try:
        expected = _validated(instances)
    except InvalidInputError:
        expected = None
    plain = _plain(instances)
    if plain is None:
        return  # parse_v1 answers as _validated does (the error tests above)
    assert expected is not None, f"the plain path took {field}={value!r}, the rule refuses it"
    got = parse_v1({"instances": instances}, max_candidates=3)
    for name in ROW:
        a, b = getattr(got, name), getattr(expected, name)
        assert a.dtype == b.dtype and a.tolist() == b.tolist(), name


def test_v1_plain_path_takes_the_common_request() -> None:
    """A well-formed request never pays for the per-instance models (the point of the path)."""
    assert _plain([ROW, {**ROW, "trip_distance_km": 0.0}]) is not None
    assert _plain([{**ROW, "surge": 1.0}]) is None  # an extra field
    assert _plain([{**ROW, "trip_distance_km": 4}]) is None  # an int distance: pydantic's
