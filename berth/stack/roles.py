"""The serving containers as process specs: ``python -m berth_predictor`` and
``python -m berth_transformer`` on loopback ports, and the transformer's feature settings."""

from __future__ import annotations

from pathlib import Path

from berth.stack.ports import LOOPBACK
from berth.stack.process import ServerProcess


def predictor_process(
    model: str,
    artifact: Path,
    ports: tuple[int, int],
    env: dict[str, str] | None = None,
    log_path: Path | None = None,
    nice: int = 0,
) -> ServerProcess:
    """``python -m berth_predictor`` serving ``artifact`` on loopback ``(http, grpc)`` ports;
    ready when the model is. Not started."""
    http, grpc = ports
    env = {"BERTH_PREDICTOR_LISTEN_HOST": LOOPBACK, **(env or {})}
    return ServerProcess(
        [
            *("-m", "berth_predictor", "--model_name", model, "--model_dir", str(artifact)),
            *("--http_port", str(http), "--grpc_port", str(grpc)),
        ],
        f"http://{LOOPBACK}:{http}/v2/models/{model}/ready",
        env=env,
        log_path=log_path,
        nice=nice,
    )


def transformer_process(
    model: str,
    predictor_host: str,
    ports: tuple[int, int],
    env: dict[str, str] | None = None,
    log_path: Path | None = None,
    predictor_protocol: str = "grpc-v2",
) -> ServerProcess:
    """``python -m berth_transformer`` in front of ``predictor_host`` (``host:port`` of its
    gRPC port, or of its HTTP port with ``predictor_protocol="v2"``) on loopback ``(http,
    grpc)`` ports; Berth's settings come in ``env``. Not started."""
    http, grpc = ports
    env = {"BERTH_TRANSFORMER_LISTEN_HOST": LOOPBACK, **(env or {})}
    return ServerProcess(
        [
            *("-m", "berth_transformer", "--model_name", model),
            *("--predictor_host", predictor_host, "--predictor_protocol", predictor_protocol),
            *("--http_port", str(http), "--grpc_port", str(grpc)),
        ],
        f"http://{LOOPBACK}:{http}/v2/models/{model}/ready",
        env=env,
        log_path=log_path,
    )


def feature_env(
    repo: Path,
    artifact: Path,
    connection_string: str | None = None,
    store_yaml: Path | None = None,
) -> dict[str, str]:
    """The transformer's settings for reading ``repo``'s features for ``artifact``'s model:
    the Feast repo (and its ``feature_store*.yaml`` if not the default), the model metadata,
    and the online store's ``REDIS_CONNECTION_STRING`` when it is Redis."""
    env = {
        "BERTH_TRANSFORMER_FEATURE_REPO": str(repo),
        "BERTH_TRANSFORMER_MODEL_METADATA": str(artifact / "metadata.json"),
    }
    if store_yaml is not None:
        env["BERTH_TRANSFORMER_FEATURE_STORE_YAML"] = str(store_yaml)
    if connection_string is not None:
        env["REDIS_CONNECTION_STRING"] = connection_string
    return env
