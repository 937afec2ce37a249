"""One mapping of :class:`~berth.errors.BerthError` for REST and one for gRPC.

KServe answers any exception it does not know with 500 / INTERNAL. A :class:`WireError` is a
``grpc_interceptor`` ``GrpcException``, which KServe's gRPC interceptor turns into the error's
status code and client message; :func:`install_rest_handler` does the same for FastAPI.
5xx bodies carry only the error's fixed client message.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from grpc_interceptor.exceptions import GrpcException
from starlette.exceptions import HTTPException as StarletteHTTPException

from berth.errors import BerthError, OverloadedError, ShuttingDownError
from berth.observability import (
    REQUEST_ID_HEADER,
    get_logger,
    new_request_id,
    request_id_var,
    traceparent_of,
    traceparent_var,
)
from berth.serving.lograte import FAILURES

log = get_logger(__name__)


class WireError(GrpcException):
    """A :class:`BerthError` on its way to the client."""

    def __init__(self, error: BerthError, request_id: str | None = None) -> None:
        super().__init__(details=error.client_message, status_code=error.grpc_code)
        self.error = error
        self.request_id = request_id

    def __str__(self) -> str:
        return self.error.client_message


def to_wire(exc: Exception, request_id: str) -> tuple[str, Exception]:
    """What a model's ``__call__`` raises for ``exc`` (call it in the ``except`` block), and
    the outcome label of its metrics.

    A :class:`BerthError` goes out as itself (logged, unless metrics count it); KServe's own
    ``InvalidInput`` stays a 400 for KServe's handler; anything else is logged with its
    traceback and goes out as a 500 without internals.
    """
    from kserve.errors import InvalidInput

    if isinstance(exc, BerthError):
        log_refusal(exc)
        return str(exc.status), WireError(exc, request_id)
    if isinstance(exc, InvalidInput):
        return "400", exc
    if (suppressed := FAILURES.allow("request failed 500")) is not None:
        log.exception("request failed", status=500, suppressed=suppressed)  # in the except
    return "500", WireError(BerthError(), request_id)


def log_refusal(exc: BerthError) -> None:
    """One line per refused (4xx: INFO) or failed (5xx: WARNING) request, rate-limited,
    unless metrics count that kind (``log_each`` false)."""
    event = "request failed" if exc.status >= 500 else "request refused"
    if exc.log_each and (suppressed := FAILURES.allow(f"{event} {exc.status}")) is not None:
        if exc.status >= 500:
            log.warning(event, status=exc.status, error=exc.message, suppressed=suppressed)
        else:
            field = exc.details.get("field")
            log.info(
                event, status=exc.status, error=exc.message, field=field, suppressed=suppressed
            )


@dataclass
class Served:
    """One call of a model: its request id and, once it ended, the status its metrics carry."""

    request_id: str
    traceparent: str | None = None
    outcome: str = "200"

    @classmethod
    def of(cls, headers: dict[str, str]) -> Served:
        """The caller's request id (when it is a short printable ASCII token), or a new one
        written into ``headers`` (KServe echoes it); a replaced id is logged, cut short; and the
        caller's W3C ``traceparent`` (or a new trace)."""
        given = headers.get(REQUEST_ID_HEADER)
        request_id = valid_request_id(given) or new_request_id()
        if given and given != request_id and FAILURES.allow("request id replaced") is not None:
            log.info(
                "request id replaced",
                given=ascii(given[:32]),
                given_length=len(given),
                request_id=request_id,
                rule=f"1-{MAX_REQUEST_ID} printable ASCII characters",
            )
        headers[REQUEST_ID_HEADER] = request_id
        return cls(request_id, traceparent_of(headers))


MAX_REQUEST_ID = 128
_ID_CHARS = frozenset(chr(c) for c in range(0x21, 0x7F))  # printable ASCII, no space


def valid_request_id(value: str | None) -> str | None:
    """``value`` when it can travel as a header and gRPC metadata and be logged as is."""
    if value and len(value) <= MAX_REQUEST_ID and _ID_CHARS.issuperset(value):
        return value
    return None


@contextmanager
def served(call: Served) -> Iterator[None]:
    """Around a model's ``__call__`` in either container: ``call``'s request id bound for the
    logs, and whatever the call raises mapped by :func:`to_wire`, setting ``call.outcome``."""
    token = request_id_var.set(call.request_id)
    trace_token = traceparent_var.set(call.traceparent)
    try:
        yield
    except Exception as exc:
        call.outcome, wire = to_wire(exc, call.request_id)
        if wire is exc:  # KServe's own 400: its handler answers it
            raise
        raise wire from None
    finally:
        traceparent_var.reset(trace_token)
        request_id_var.reset(token)


def rest_response(error: BerthError, request_id: str | None = None) -> JSONResponse:
    headers: dict[str, str] = {}
    if isinstance(error, OverloadedError):
        headers["Retry-After"] = str(error.retry_after_s)
    elif error.status == 503:
        headers["Retry-After"] = "1"
    if isinstance(error, ShuttingDownError):
        headers["Connection"] = "close"  # this server is going away: no reuse of the socket
    if request_id:
        headers[REQUEST_ID_HEADER] = request_id
    return JSONResponse(
        status_code=error.status, content={"error": error.client_message}, headers=headers
    )


def error_response(exc: Exception, headers: Mapping[str, str]) -> JSONResponse:
    """The answer to ``exc`` raised by a request with these ``headers`` (names lower-case): a
    ``BerthError`` (or a :class:`WireError` carrying one) with its status and the request's
    id, KServe's ``InvalidInput`` a 400 as KServe answers it, anything else a 500 without
    internals (logged)."""
    from kserve.errors import InvalidInput

    given = valid_request_id(headers.get(REQUEST_ID_HEADER))
    if isinstance(exc, WireError):
        return rest_response(exc.error, exc.request_id or given)
    if isinstance(exc, BerthError):  # raised before the model's call (which logs its own)
        log_refusal(exc)
        return rest_response(exc, request_id_var.get() or given)
    if isinstance(exc, InvalidInput):
        return JSONResponse(status_code=400, content={"error": str(exc)})
    if (suppressed := FAILURES.allow("request failed 500")) is not None:
        log.error("request failed", status=500, suppressed=suppressed, exc_info=exc)
    return rest_response(BerthError(), given)


async def _handle(request: Request, exc: Exception) -> JSONResponse:
    return error_response(exc, request.headers)


async def _malformed(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's 422 for a body it cannot parse is a 400 here, naming where it broke."""
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {}
    loc = [str(p) for p in first.get("loc", ())]
    if first.get("type") == "json_invalid":
        where = f"body (character {loc[-1]})" if len(loc) > 1 else "body"
    else:
        where = ".".join(loc) or "body"
    return JSONResponse(
        status_code=400,
        content={"error": f"malformed request {where}: {first.get('msg', 'invalid')}"},
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    """Starlette/FastAPI's own errors (an unparsable body, 404, 405) in Berth's body shape."""
    assert isinstance(exc, StarletteHTTPException)
    return JSONResponse(
        status_code=exc.status_code, content={"error": str(exc.detail)}, headers=exc.headers
    )


def install_rest_handler(app: FastAPI) -> None:
    """Register the mapping on KServe's FastAPI app (before its catch-all 500 handler)."""
    app.add_exception_handler(WireError, _handle)
    app.add_exception_handler(BerthError, _handle)
    app.add_exception_handler(RequestValidationError, _malformed)
    app.add_exception_handler(StarletteHTTPException, _http_error)
