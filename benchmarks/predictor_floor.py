"""``python -m benchmarks.predictor_floor --model M --http-port P --grpc-port G``: the floor.

The least a Python V2 predictor spends per call on this machine, as a peer beside the others
(:mod:`benchmarks.peers`): per call, one run of the int8 ``model.onnx`` on a fixed 10-row
matrix (one intra-op thread) and a fixed answer, with nothing else.

* REST V2: a bare ASGI callable on uvicorn (uvloop, httptools, no framework, no access log) that
  reads the body and answers a fixed V2 JSON body.
* gRPC V2: a ``grpc.aio`` server with no interceptors and ``ModelInfer`` as a generic handler
  over raw bytes (no protobuf decode of the request, a response serialized once).

No decoding, validation, batching or metrics: Berth's share of this floor is the part of a call
its own code could still cut; the rest is the server library's (uvicorn's, grpcio's).
``GET /v2/models/{model}/ready`` answers 200 once loaded (the peers' readiness check).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.floor import read_request
from benchmarks.payloads import MODEL

ROWS = 10
SERVICE = "inference.GRPCInferenceService"


def _session_run(model: Path) -> Any:
    """One intra-op thread, a fixed 10-row feed: a call of the returned function runs it."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    spec = session.get_inputs()[0]
    feed = {spec.name: np.random.default_rng(0).random((ROWS, spec.shape[1])).astype(np.float32)}
    return lambda: session.run(None, feed)


def rest_app(model_name: str, run: Any) -> Any:
    answer = (
        b'{"model_name":"' + model_name.encode() + b'","outputs":[{"name":"score","datatype":'
        b'"FP32","shape":[10,1],"data":[0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.5]}]}'
    )
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(answer))]

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if not await read_request(scope, receive, send):
            return
        body = b"{}"
        if scope["method"] == "POST":
            run()
            body = answer
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


def grpc_answer(model_name: str) -> bytes:
    from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb

    output = pb.ModelInferResponse.InferOutputTensor(
        name="score",
        datatype="FP32",
        shape=[ROWS, 1],
        contents=pb.InferTensorContents(fp32_contents=[0.5] * ROWS),
    )
    return pb.ModelInferResponse(model_name=model_name, outputs=[output]).SerializeToString()


async def serve(model: Path, http_port: int, grpc_port: int) -> None:
    import grpc
    import uvicorn

    run = _session_run(model)
    answer = grpc_answer(MODEL)

    async def model_infer(request: bytes, context: Any) -> bytes:
        run()
        return answer

    handler = grpc.method_handlers_generic_handler(
        SERVICE, {"ModelInfer": grpc.unary_unary_rpc_method_handler(model_infer)}
    )
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port(f"127.0.0.1:{grpc_port}")
    await server.start()
    config = uvicorn.Config(
        rest_app(MODEL, run),
        host="127.0.0.1",
        port=http_port,
        loop="none",  # this loop (uvloop, set by main)
        http="httptools",
        lifespan="on",
        access_log=False,
        log_level="warning",
    )
    await uvicorn.Server(config).serve()
    await server.stop(0)


def main() -> None:
    import uvloop

    parser = argparse.ArgumentParser(prog="python -m benchmarks.predictor_floor")
    parser.add_argument("--model", required=True, help="model.onnx")
    parser.add_argument("--http-port", type=int, required=True)
    parser.add_argument("--grpc-port", type=int, required=True)
    args = parser.parse_args()
    uvloop.run(serve(Path(args.model), args.http_port, args.grpc_port))


if __name__ == "__main__":
    main()
