"""MLflow tracking and model registry: where builds are logged, and ``models:/`` URIs.

The tracking URI is ``MLFLOW_TRACKING_URI`` when set (a team's ``mlflow server``), else an
embedded SQLite store under ``./mlruns`` that needs no server. A registered model version's
source is the artifact directory logged with the build's run; :func:`fetch` downloads it and
checks its digests as ``berth verify`` does for a directory, and against the metadata digest
recorded on the version when it was registered.

``models:/NAME/VERSION`` or ``models:/NAME@ALIAS`` resolves to the artifact's *storage URI*,
what an InferenceService's ``storageUri`` needs: the ``berth.storage_uri`` tag given at
registration (``berth build --register NAME --storage-uri s3://...``), else the version's
download URI when KServe's storage initializer can fetch it (a server run with
``--default-artifact-root s3://... --no-serve-artifacts``).

``mlflow`` (the ``tracking`` extra: mlflow-skinny) is imported inside the functions.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from berth.artifact import ArtifactMetadata, verify_artifact
from berth.errors import ArtifactError, BerthError

TRACKING_ENV = "MLFLOW_TRACKING_URI"
DEFAULT_DIR = Path("mlruns")
ARTIFACT_PATH = "artifact"  # where a build's run keeps the artifact directory
STORAGE_URI_TAG = "berth.storage_uri"
DIGEST_TAG = "berth.metadata_sha256"
VERSION_TAG = "berth.model_version"
MODELS_PREFIX = "models:/"
# What KServe's storage initializer downloads (the prefixes of Storage.download in KServe's
# kserve_storage package); mlflow-artifacts:, file: and runs: are MLflow's own, not among them.
KSERVE_SCHEMES = (
    "s3://",
    "gs://",
    "pvc://",
    "hdfs://",
    "webhdfs://",
    "https://",
    "http://",
    "hf://",
)
_MODEL_URI = re.compile(r"models:/(?P<name>[^/@]+)(?:/(?P<version>\d+)|@(?P<alias>[\w-]+))/?")


class RegistryError(BerthError):
    """MLflow cannot be reached, or a ``models:/`` URI names nothing it knows."""


@dataclass(frozen=True)
class RegisteredArtifact:
    """A registered model version, downloaded and verified."""

    name: str
    version: str
    path: Path
    storage_uri: str
    metadata: ArtifactMetadata


def tracking_uri() -> str:
    """``$MLFLOW_TRACKING_URI``, else the embedded store ``sqlite:///<cwd>/mlruns/mlflow.db``."""
    if os.environ.get(TRACKING_ENV):
        return os.environ[TRACKING_ENV]
    DEFAULT_DIR.mkdir(exist_ok=True)
    return f"sqlite:///{(DEFAULT_DIR / 'mlflow.db').resolve()}"


def client() -> Any:
    """An ``mlflow.MlflowClient`` on :func:`tracking_uri`."""
    try:
        import mlflow
    except ImportError as exc:
        raise RegistryError("MLflow is not installed: pip install 'berth[tracking]'") from exc
    uri = tracking_uri()
    mlflow.set_tracking_uri(uri)
    return mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)


def experiment_id(mlflow_client: Any, name: str) -> str:
    """The experiment's id, created when missing (artifacts in MLflow's default root: the
    server's, or ``./mlruns`` for the embedded store)."""
    found = mlflow_client.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    return str(mlflow_client.create_experiment(name))


def is_model_uri(text: str | None) -> bool:
    return bool(text) and str(text).startswith(MODELS_PREFIX)


def parse_model_uri(uri: str) -> tuple[str, str | None, str | None]:
    """``(name, version, alias)`` of ``models:/NAME/VERSION`` or ``models:/NAME@ALIAS``."""
    match = _MODEL_URI.fullmatch(uri)
    if match is None:
        raise RegistryError(f"{uri!r}: expected models:/NAME/VERSION or models:/NAME@ALIAS")
    return match["name"], match["version"], match["alias"]


def register(
    name: str, run_id: str, metadata: ArtifactMetadata, storage_uri: str | None = None
) -> str:
    """Register the artifact logged with run ``run_id`` as a new version of ``name``."""
    mlflow_client = client()
    from mlflow.exceptions import MlflowException

    try:
        mlflow_client.get_registered_model(name)
    except MlflowException:
        mlflow_client.create_registered_model(name)
    run = mlflow_client.get_run(run_id)
    tags = {DIGEST_TAG: metadata.metadata_sha256, VERSION_TAG: metadata.version}
    if storage_uri:
        tags[STORAGE_URI_TAG] = storage_uri
    version = mlflow_client.create_model_version(
        name, f"{run.info.artifact_uri}/{ARTIFACT_PATH}", run_id=run_id, tags=tags
    )
    return str(version.version)


def _model_version(mlflow_client: Any, uri: str) -> Any:
    from mlflow.exceptions import MlflowException

    name, version, alias = parse_model_uri(uri)
    try:
        if alias is not None:
            return mlflow_client.get_model_version_by_alias(name, alias)
        return mlflow_client.get_model_version(name, version)
    except MlflowException as exc:
        raise RegistryError(f"{uri}: not in the registry at {tracking_uri()} ({exc})") from exc


def fetch(uri: str, dest: Path) -> RegisteredArtifact:
    """Download the registered version ``uri`` into ``dest`` and verify it (digests, and the
    metadata digest recorded at registration)."""
    mlflow_client = client()
    import mlflow
    from mlflow.exceptions import MlflowException

    version = _model_version(mlflow_client, uri)
    download_uri = mlflow_client.get_model_version_download_uri(version.name, version.version)
    try:
        local = Path(mlflow.artifacts.download_artifacts(download_uri, dst_path=str(dest)))
    except (MlflowException, OSError) as exc:
        raise RegistryError(f"{uri}: cannot download {download_uri} ({exc})") from exc
    metadata = verify_artifact(local)
    recorded = version.tags.get(DIGEST_TAG)
    if recorded and recorded != metadata.metadata_sha256:
        raise ArtifactError(
            f"{uri}: metadata.json sha256 {metadata.metadata_sha256} is not the one registered "
            f"({recorded})",
            file="metadata.json",
        )
    return RegisteredArtifact(
        name=version.name,
        version=str(version.version),
        path=local,
        storage_uri=version.tags.get(STORAGE_URI_TAG) or download_uri,
        metadata=metadata,
    )


def resolve_storage_uri(value: str | None) -> str | None:
    """A ``--storage-uri`` value: ``models:/...`` becomes the verified artifact's storage URI,
    anything else is returned as given."""
    if value is None or not is_model_uri(value):
        return value
    with tempfile.TemporaryDirectory(prefix="berth-model-") as tmp:
        found = fetch(value, Path(tmp))
    if not found.storage_uri.startswith(KSERVE_SCHEMES):
        raise RegistryError(
            f"{value} is stored at {found.storage_uri}, which KServe cannot fetch: register it "
            f"with --storage-uri (where the artifact is published), or run the MLflow server "
            f"with an object-store --default-artifact-root and --no-serve-artifacts"
        )
    return found.storage_uri


def set_alias(uri: str, alias: str) -> str:
    """Point ``alias`` of the registered model at the version ``uri`` names; its version."""
    mlflow_client = client()
    version = _model_version(mlflow_client, uri)
    mlflow_client.set_registered_model_alias(version.name, alias, version.version)
    return str(version.version)
