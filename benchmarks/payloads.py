"""Ranking requests as the three protocols carry them: KServe V1, Open Inference V2 REST, gRPC V2.

Every benchmark sends the same seeded pool of requests (one customer, ``candidates`` drivers
each), so Berth and the baseline read the same Redis keys in the same order.
"""

from __future__ import annotations

import json
import random
from typing import Any

from berth.loadtest import MODEL, v2_inputs

PROTOCOLS = ("v1", "v2", "grpc-v2", "v2-binary")  # v2-binary: model rows only (``features``)
BINARY_HEADER = "inference-header-content-length"

Row = dict[str, Any]


def ranking_requests(
    count: int,
    candidates: int,
    seed: int = 0,
    drivers: tuple[int, int] = (1001, 1120),
    customers: tuple[int, int] = (1, 400),
) -> list[list[Row]]:
    """``count`` requests of ``candidates`` distinct drivers for one customer each."""
    rng = random.Random(seed)
    pool = list(range(drivers[0], drivers[1] + 1))
    out = []
    for _ in range(count):
        customer = rng.randint(*customers)
        km = round(rng.uniform(0.5, 30.0), 1)
        hour = rng.randrange(24)
        picked = rng.sample(pool, min(candidates, len(pool)))
        out.append(
            [
                {
                    "customer_id": customer,
                    "driver_id": d,
                    "trip_distance_km": km,
                    "pickup_hour": hour,
                }
                for d in picked
            ]
        )
    return out


def v1_body(rows: list[Row]) -> bytes:
    return json.dumps({"instances": rows}).encode()


def v2_body(rows: list[Row], request_id: str = "bench") -> bytes:
    return json.dumps({"id": request_id, "inputs": v2_inputs(rows)}).encode()


def feature_rows(count: int, rows: int, width: int = 20, seed: int = 0) -> list[list[list[float]]]:
    """``count`` requests of ``rows`` x ``width`` model inputs (for the predictor alone)."""
    rng = random.Random(seed)
    return [
        [[round(rng.uniform(0.0, 10.0), 3) for _ in range(width)] for _ in range(rows)]
        for _ in range(count)
    ]


def predictor_v2_body(matrix: list[list[float]], input_name: str = "features") -> bytes:
    flat = [v for row in matrix for v in row]
    tensor = {"name": input_name, "datatype": "FP32", "shape": [len(matrix), len(matrix[0])]}
    return json.dumps({"id": "bench", "inputs": [{**tensor, "data": flat}]}).encode()


def predictor_v2_binary_body(
    matrix: list[list[float]], input_name: str = "features"
) -> tuple[bytes, int]:
    """REST V2 with the binary tensor extension: a JSON header naming ``binary_data_size``,
    then the rows as little-endian float32; returns the body and the header's length."""
    import numpy as np

    raw = np.asarray(matrix, dtype="<f4").tobytes()
    tensor = {"name": input_name, "datatype": "FP32", "shape": [len(matrix), len(matrix[0])]}
    header = json.dumps(
        {"id": "bench", "inputs": [{**tensor, "parameters": {"binary_data_size": len(raw)}}]}
    ).encode()
    return header + raw, len(header)


def predictor_grpc_request(
    matrix: list[list[float]], model: str = MODEL, input_name: str = "features"
) -> Any:
    """A ``ModelInferRequest`` carrying the matrix as raw little-endian float32 bytes."""
    import numpy as np
    from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb

    array = np.asarray(matrix, dtype="<f4")
    return pb.ModelInferRequest(
        model_name=model,
        inputs=[
            pb.ModelInferRequest.InferInputTensor(
                name=input_name, datatype="FP32", shape=list(array.shape)
            )
        ],
        raw_input_contents=[array.tobytes()],
    )


def rest_path(protocol: str, model: str = MODEL) -> str:
    return f"/v1/models/{model}:predict" if protocol == "v1" else f"/v2/models/{model}/infer"
