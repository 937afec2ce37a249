"""Settings both serving containers share; each adds its own under its ``BERTH_<ROLE>_`` prefix."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings


class ServingSettings(BaseSettings):
    """Shutdown and logging, the same in the predictor and the transformer. Subclasses set
    ``model_config`` (the env prefix) and declare ``max_request_bytes`` with their default."""

    max_request_bytes: int
    """Largest request body (REST: 413 naming this setting) and gRPC message."""

    max_header_bytes: int = Field(default=32 * 1024, ge=1024)
    """Largest request line plus headers of a REST request; above it, or above
    ``max_headers`` headers, the answer is 431 and the connection is closed."""

    max_headers: int = Field(default=100, ge=8)
    """Most header fields in one REST request (431 above)."""

    header_timeout_s: float = Field(default=10.0, gt=0)
    """A REST connection must send a request's headers within this many seconds of opening
    (or of the request's first byte); else 408 and the connection is closed (slowloris)."""

    shutdown_grace_s: float = Field(default=25.0, gt=0)
    """On SIGTERM: readiness drops, in-flight requests finish, the process exits within this
    many seconds. Keep it under the pod's terminationGracePeriodSeconds (30 in the chart)."""

    shutdown_delay_s: float = Field(default=0.0, ge=0)
    """On SIGTERM, keep serving new requests this long after readiness drops (time for the
    endpoint to leave the Service); then new work gets 503."""

    log_level: str = "INFO"
    """Log level of the JSON logs (structlog, stderr)."""

    listen_host: str = "0.0.0.0"
    """Address the REST and gRPC servers bind (``0.0.0.0``: every interface, gRPC on ``[::]``,
    as KServe; ``berth up`` and the tests use ``127.0.0.1``)."""

    model_repository: bool = False
    """Serve KServe's model-repository extension (``/v2/repository/...``, gRPC
    ``Repository*``): unauthenticated load/unload of the model. Off: those calls answer 404 /
    UNIMPLEMENTED. On: ``unload`` takes the model out of service (readiness false, inference
    404/503) and ``load`` puts it back."""

    grpc_reflection: bool = False
    """gRPC server reflection (``grpcurl`` without the ``.proto``). Off in the containers (it
    describes the API to whoever reaches the port), on in ``berth up``."""
