"""A client asking for a model this server does not have (or not yet) is the client's fault:
one INFO line without a traceback, the same answer as KServe's.

KServe 0.21 logs ``ModelNotFound`` / ``ModelNotReady`` at ERROR with a traceback in both its
REST handlers (kserve/python/kserve/kserve/errors.py) and its gRPC interceptor
(kserve/python/kserve/kserve/protocol/grpc/interceptors.py): any scanner probing model names
filled the error log.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from grpc import StatusCode
from kserve.errors import ModelNotFound, ModelNotReady
from kserve.protocol.grpc.interceptors import ExceptionToStatusInterceptor

from berth.observability import get_logger

log = get_logger(__name__)
_STATUS = {ModelNotFound: (404, StatusCode.NOT_FOUND), ModelNotReady: (503, StatusCode.UNAVAILABLE)}


def _refused(exc: Exception) -> tuple[int, StatusCode] | None:
    for kind, codes in _STATUS.items():
        if isinstance(exc, kind):
            log.info("request refused", status=codes[0], error=str(exc))
            return codes
    return None


async def _rest_handler(request: Request, exc: Exception) -> JSONResponse:
    codes = _refused(exc)
    assert codes is not None
    headers = {"Retry-After": "1"} if codes[0] == 503 else None
    return JSONResponse(status_code=codes[0], content={"error": str(exc)}, headers=headers)


def install_quiet_handlers(app: FastAPI) -> None:
    """After KServe's own handlers (they would replace these)."""
    for kind in _STATUS:
        app.add_exception_handler(kind, _rest_handler)


class QuietInterceptor(ExceptionToStatusInterceptor):  # type: ignore[misc]
    """KServe's interceptor, with not-found / not-ready at INFO and without a traceback."""

    async def handle_exception(
        self, ex: Exception, request_or_iterator: Any, context: Any, method_name: str
    ) -> None:
        codes = _refused(ex)
        if codes is None:
            await super().handle_exception(ex, request_or_iterator, context, method_name)
            return
        await context.abort(codes[1], ex.reason)  # type: ignore[attr-defined]
