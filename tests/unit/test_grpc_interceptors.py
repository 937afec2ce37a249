"""The gRPC server's interceptors: errors to status codes always; KServe's per-call log line
(an INFO record made on every call) only with trace logs on."""

from __future__ import annotations

from kserve.protocol.grpc.interceptors import LoggingInterceptor

from berth.serving.client_errors import QuietInterceptor
from berth.serving.grpc_server import BerthGrpcServer


def _server(log_calls: bool) -> BerthGrpcServer:
    return BerthGrpcServer(
        0,
        None,
        None,
        kwargs={},
        host="127.0.0.1",
        ready=lambda: True,
        reflection_on=False,
        log_calls=log_calls,
    )


def test_without_trace_logs_only_the_error_mapping_runs_per_call() -> None:
    kinds = [type(i) for i in _server(False).interceptors()]
    assert kinds == [QuietInterceptor]


def test_with_trace_logs_kserves_call_line_is_back() -> None:
    kinds = [type(i) for i in _server(True).interceptors()]
    assert kinds == [LoggingInterceptor, QuietInterceptor]
