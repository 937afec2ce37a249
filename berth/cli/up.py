"""``berth up``: run predictor + transformer locally, print how to call them, stop on Ctrl-C."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from berth.cli.options import add_stack_arguments, stack_from_args
from berth.loadtest import v2_inputs
from berth.local import Endpoints, stopping_on_signals

EXAMPLE = [
    {"customer_id": 7, "driver_id": 1003, "trip_distance_km": 4.2, "pickup_hour": 18},
    {"customer_id": 7, "driver_id": 1004, "trip_distance_km": 4.2, "pickup_hour": 18},
    {"customer_id": 7, "driver_id": 1005, "trip_distance_km": 4.2, "pickup_hour": 18},
]


def add_command(sub: Any) -> None:
    up = sub.add_parser("up", help="run predictor + transformer locally (Ctrl-C stops)")
    add_stack_arguments(up)
    up.add_argument("--port", type=int, default=8080, help="transformer HTTP port")
    up.add_argument("--grpc-port", type=int, default=8081, help="transformer gRPC port")
    up.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    stack = stack_from_args(args, args.port, args.grpc_port)
    with stopping_on_signals():
        try:
            endpoints = stack.start()
            print(usage(endpoints), flush=True)
            print("Ctrl-C (or SIGTERM) stops everything.", flush=True)
            while (failed := stack.failed()) is None:
                time.sleep(0.5)
            print(
                f"berth up: {failed} exited; see {stack.logs / (failed + '.log')}", file=sys.stderr
            )
            return 1
        except KeyboardInterrupt:
            print("\nstopping ...", flush=True)
            return 0
        finally:
            stack.stop()


def usage(ep: Endpoints) -> str:
    """What ``berth up`` prints once the stack is ready: where, and requests to copy."""
    v1 = json.dumps({"instances": EXAMPLE})
    v2 = json.dumps({"inputs": v2_inputs(EXAMPLE)})
    return f"""
Berth is up: model {ep.model} {ep.version} (FeatureService {ep.feature_service})
  transformer   REST {ep.http}   gRPC {ep.grpc}
  predictor     REST {ep.predictor_http}   gRPC {ep.predictor_grpc}
  online store  {ep.online_store}

KServe V1 (REST):
  curl -s {ep.http}/v1/models/{ep.model}:predict -H 'content-type: application/json' \\
    -d '{v1}'

Open Inference V2 (REST):
  curl -s {ep.http}/v2/models/{ep.model}/infer -H 'content-type: application/json' \\
    -d '{v2}'

Open Inference V2 (gRPC, with the kserve package's stubs):
  python - <<'EOF'
import grpc
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb, grpc_predict_v2_pb2_grpc as pbg
T, C = pb.ModelInferRequest.InferInputTensor, pb.InferTensorContents
stub = pbg.GRPCInferenceServiceStub(grpc.insecure_channel("{ep.grpc}"))
print(stub.ModelInfer(pb.ModelInferRequest(model_name="{ep.model}", inputs=[
    T(name="customer_id", datatype="INT64", shape=[3], contents=C(int64_contents=[7, 7, 7])),
    T(name="driver_id", datatype="INT64", shape=[3], contents=C(int64_contents=[1003, 1004, 1005])),
    T(name="trip_distance_km", datatype="FP32", shape=[3], contents=C(fp32_contents=[4.2] * 3)),
    T(name="pickup_hour", datatype="INT64", shape=[3], contents=C(int64_contents=[18] * 3)),
])).outputs[0].contents.fp32_contents)
EOF

Metrics: curl -s {ep.http}/metrics | grep berth_transformer
"""
