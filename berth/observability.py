"""Logging for every Berth process: structlog JSON lines with the logger's name, the request
id and the W3C trace id, no payloads."""

from __future__ import annotations

import logging
import random
import re
import sys
from collections.abc import Mapping, MutableMapping
from contextvars import ContextVar
from typing import Any

import structlog

REQUEST_ID_HEADER = "x-request-id"
TRACEPARENT_HEADER = "traceparent"  # W3C Trace Context
request_id_var: ContextVar[str | None] = ContextVar("berth_request_id", default=None)
traceparent_var: ContextVar[str | None] = ContextVar("berth_traceparent", default=None)
_TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")


def _random_hex(bits: int) -> str:
    """``bits`` random bits as lower-case hex, never all zeros (W3C: an all-zero id is invalid).

    Python's ``random`` (Mersenne Twister, seeded from the OS, re-seeded in a forked child),
    as OpenTelemetry's id generator does: ids need to be unique, not secret, and
    ``uuid.uuid4``/``os.urandom`` cost a ``getrandom`` system call each, three per request."""
    while not (value := random.getrandbits(bits)):
        pass
    return f"{value:0{bits // 4}x}"


def new_request_id() -> str:
    return _random_hex(128)


def traceparent_of(headers: Mapping[str, str]) -> str:
    """The caller's ``traceparent`` when it is a valid W3C version-00 one, else a new trace
    (not sampled) so that both containers' lines of this request share a trace id."""
    value = (headers.get(TRACEPARENT_HEADER) or "").strip().lower()
    match = _TRACEPARENT.fullmatch(value)
    if match and set(match.group(1)) != {"0"} and set(match.group(2)) != {"0"}:
        return value
    return f"00-{_random_hex(128)}-{_random_hex(64)}-00"


def outgoing_headers(request_id: str) -> dict[str, str]:
    """Headers (gRPC metadata) of a call made for the current request: its id and a
    ``traceparent`` in the same trace, with this call as the parent span."""
    headers = {REQUEST_ID_HEADER: request_id}
    current = traceparent_var.get()
    if current is not None:
        _, trace_id, _, flags = current.split("-")
        headers[TRACEPARENT_HEADER] = f"00-{trace_id}-{_random_hex(64)}-{flags}"
    return headers


def _add_request_id(
    _: object, __: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    rid = request_id_var.get()
    if rid is not None and "request_id" not in event:
        event["request_id"] = rid
    traceparent = traceparent_var.get()
    if traceparent is not None and "trace_id" not in event:
        event["trace_id"] = traceparent.split("-")[1]
    return event


def configure_logging(component: str, level: str = "INFO") -> None:
    """JSON logs on stderr; stdlib loggers (kserve, uvicorn, feast) go through the same pipe."""
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_request_id,
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                structlog.processors.JSONRenderer(),
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("kserve", "kserve.trace", "uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    structlog.contextvars.bind_contextvars(component=component)


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    return structlog.get_logger(name)  # type: ignore[no-any-return]
