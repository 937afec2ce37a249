"""Stand-in and extra servers for tests: an aiohttp app on loopback, an MLflow server."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from berth.stack import LOOPBACK, ServerProcess, free_port


@contextlib.asynccontextmanager
async def loopback_app(app: Any) -> AsyncIterator[str]:
    """An ``aiohttp.web.Application`` served on a free loopback port: its base URL, torn down
    after (a stand-in server for load-generator tests)."""
    from aiohttp import web

    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, LOOPBACK, port).start()
    try:
        yield f"http://{LOOPBACK}:{port}"
    finally:
        await runner.cleanup()


MLFLOW_VENV = Path(__file__).resolve().parents[2] / ".venv-mlflow"


def mlflow_executable() -> str | None:
    """``$BERTH_MLFLOW``, else the ``mlflow`` of ``.venv-mlflow`` (scripts/setup.sh makes it:
    the server needs the full ``mlflow`` package, whose pins clash with the serving ones)."""
    found = os.environ.get("BERTH_MLFLOW") or str(MLFLOW_VENV / "bin" / "mlflow")
    return found if os.access(found, os.X_OK) else None


def mlflow_server_process(root: Path, port: int | None = None) -> tuple[ServerProcess, str]:
    """``mlflow server`` on a free loopback port, its SQLite backend and artifact store under
    ``root``; (process, tracking URI). Not started."""
    executable = mlflow_executable()
    if executable is None:
        raise RuntimeError("no mlflow server: run scripts/setup.sh (it makes .venv-mlflow)")
    port = port or free_port()
    root.mkdir(parents=True, exist_ok=True)
    args = [
        *("server", "--host", LOOPBACK, "--port", str(port), "--workers", "1"),
        *("--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}"),
        *("--artifacts-destination", str(root / "artifacts")),
    ]
    url = f"http://{LOOPBACK}:{port}"
    process = ServerProcess(
        args, f"{url}/health", log_path=root / "mlflow.log", executable=executable
    )
    return process, url
