"""One root error that carries its HTTP status and gRPC code.

Servers map :class:`BerthError` to a response in one place each (REST and gRPC); the message
of a 4xx names the offending field, a 5xx says nothing internal.
"""

from __future__ import annotations

import grpc

MAX_MESSAGE_CHARS = 1024  # a message (client body, log line) never grows with the client's input
QUOTE_CHARS = 64


def short(value: object, limit: int = QUOTE_CHARS) -> str:
    """A client-supplied string cut to ``limit`` characters, to name it in a message."""
    text = str(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def quote(value: object, limit: int = QUOTE_CHARS) -> str:
    """``repr`` of a client-supplied string, cut to ``limit`` characters (with its length)."""
    text = str(value)
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}... ({len(text)} characters)"


class BerthError(Exception):
    """Root of Berth's errors. ``status`` is the HTTP status, ``grpc_code`` the gRPC one."""

    status: int = 500
    grpc_code: grpc.StatusCode = grpc.StatusCode.INTERNAL
    public_message = "internal error"
    # False for refusals that metrics count (overload, drain, warm-up): a log line per
    # refused request would add to the load that caused it.
    log_each: bool = True

    def __init__(self, message: str = "", **details: object) -> None:
        message = message or self.public_message
        if len(message) > MAX_MESSAGE_CHARS:  # a safety net: callers quote client strings
            message = message[:MAX_MESSAGE_CHARS] + "..."
        super().__init__(message)
        self.message = message
        self.details = details

    @property
    def client_message(self) -> str:
        """What the caller sees: the message for 4xx, a fixed phrase for 5xx."""
        return self.message if self.status < 500 else self.public_message


class InvalidInputError(BerthError):
    """The request is malformed; ``field`` names what is wrong."""

    status = 400
    grpc_code = grpc.StatusCode.INVALID_ARGUMENT

    def __init__(self, message: str, field: str | None = None) -> None:
        if field is not None:
            field = short(field)
        super().__init__(message, field=field)
        self.field = field


class ModelNotFoundError(BerthError):
    status = 404
    grpc_code = grpc.StatusCode.NOT_FOUND

    @property
    def client_message(self) -> str:
        return self.message


class PayloadTooLargeError(BerthError):
    status = 413
    grpc_code = grpc.StatusCode.INVALID_ARGUMENT

    @property
    def client_message(self) -> str:
        return self.message


class OverloadedError(BerthError):
    """Too much work in flight; the caller should retry after ``retry_after_s``."""

    status = 429
    grpc_code = grpc.StatusCode.RESOURCE_EXHAUSTED
    public_message = "server overloaded, retry later"
    log_each = False

    def __init__(self, message: str = "", retry_after_s: int = 1) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class DependencyUnavailableError(BerthError):
    """A dependency (online store, predictor) cannot be reached."""

    status = 503
    grpc_code = grpc.StatusCode.UNAVAILABLE
    public_message = "a dependency is unavailable, retry later"

    def __init__(self, dependency: str, message: str = "") -> None:
        super().__init__(message or f"{dependency} unavailable")
        self.dependency = dependency

    @property
    def client_message(self) -> str:
        return f"{self.dependency} unavailable, retry later"


class DeadlineExceededError(BerthError):
    status = 504
    grpc_code = grpc.StatusCode.DEADLINE_EXCEEDED
    public_message = "deadline exceeded"

    def __init__(self, stage: str, message: str = "") -> None:
        super().__init__(message or f"deadline exceeded in {stage}")
        self.stage = stage

    @property
    def client_message(self) -> str:
        return f"deadline exceeded while waiting for {self.stage}"


class ArtifactError(BerthError):
    """The model artifact is missing, unreadable or does not match its digests."""

    def __init__(self, message: str, file: str) -> None:
        super().__init__(message, file=file)
        self.file = file


class ContractMismatchError(BerthError):
    """The transformer's FeatureService and the predictor's model disagree."""


class ShuttingDownError(BerthError):
    """The server is draining after SIGTERM: it finishes what it has and takes nothing new."""

    status = 503
    grpc_code = grpc.StatusCode.UNAVAILABLE
    public_message = "server shutting down, retry on another replica"
    log_each = False
