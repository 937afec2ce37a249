"""The Feast feature repo as Berth uses it: open a store, read a FeatureService's contract.

``feast`` is imported inside the functions: it is slow to import (~6 s) and the predictor
never needs it.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from berth.errors import ContractMismatchError

if TYPE_CHECKING:
    from feast import FeatureStore

REPO_DIR = Path(__file__).resolve().parent.parent / "feature_repo"
REDIS_YAML = "feature_store.yaml"
SQLITE_YAML = "feature_store.sqlite.yaml"
CLUSTER_YAML = "feature_store.redis_cluster.yaml"  # redis_type: redis_cluster
REPO_FILES = (
    "berth_features.py",
    REDIS_YAML,
    SQLITE_YAML,
    CLUSTER_YAML,
    ".feastignore",
    "data_contract.yaml",
)


@dataclass(frozen=True)
class ContractFeature:
    """One feature of a FeatureService, in order, with its view's TTL (None: request-time)."""

    name: str
    dtype: str
    view: str
    ttl: timedelta | None


def copy_repo(dest: Path) -> Path:
    """Copy the repo's definitions (not its data) to ``dest``: tests and demos work there."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in REPO_FILES:
        shutil.copy2(REPO_DIR / name, dest / name)
    return dest


def redis_connection_string(url: str) -> str:
    """Turn ``redis://[:password@]host:port[/db]`` into Feast's ``host:port,db=N,...`` form."""
    from urllib.parse import urlparse

    if "://" not in url:
        return url
    parsed = urlparse(url)
    parts = [f"{parsed.hostname or 'localhost'}:{parsed.port or 6379}"]
    if parsed.password:
        parts.append(f"password={parsed.password}")
    if parsed.path.strip("/"):
        parts.append(f"db={parsed.path.strip('/')}")
    if parsed.scheme == "rediss":
        parts.append("ssl=true")
    return ",".join(parts)


def open_store(repo: Path, yaml_file: Path | None = None) -> FeatureStore:
    """A FeatureStore over ``repo``. ``REDIS_CONNECTION_STRING`` defaults to localhost."""
    from feast import FeatureStore

    os.environ.setdefault("REDIS_CONNECTION_STRING", "localhost:6379")
    yaml_path = Path(yaml_file) if yaml_file else repo / REDIS_YAML
    return FeatureStore(repo_path=str(repo), fs_yaml_file=yaml_path)


def apply_repo(repo: Path, yaml_file: Path | None = None) -> None:
    """``feast apply`` for ``repo``: register every object defined in ``berth_features.py``."""
    from feast.repo_config import load_repo_config
    from feast.repo_operations import apply_total

    os.environ.setdefault("REDIS_CONNECTION_STRING", "localhost:6379")
    repo = Path(repo).resolve()
    yaml_path = Path(yaml_file).resolve() if yaml_file else repo / REDIS_YAML
    # Feast imports the repo's modules by name, as its CLI does from the repo directory.
    # Feast also changes the working directory to the repo: restore it.
    cwd = os.getcwd()
    sys.path.insert(0, str(repo))
    try:
        apply_total(load_repo_config(repo, yaml_path), repo, skip_source_validation=True)
    finally:
        os.chdir(cwd)
        sys.path.remove(str(repo))
        sys.modules.pop("berth_features", None)


def materialize_latest(repo: Path, yaml_file: Path | None = None) -> FeatureStore:
    """``feast apply``, then each view's whole history up to now into the online store, so
    every entity's latest row is online (the transformer's TTL check flags, and fills, what is
    older than its view's TTL). Returns the store."""
    apply_repo(repo, yaml_file)
    store = open_store(repo, yaml_file)
    now = datetime.now(UTC)
    store.materialize(start_date=now - timedelta(days=3650), end_date=now)
    return store


def service_contract(store: FeatureStore, service_name: str) -> list[ContractFeature]:
    """The FeatureService's features in order: the model's input columns."""
    service = store.get_feature_service(service_name)
    views = {v.name: v for v in store.list_feature_views()}
    out: list[ContractFeature] = []
    for projection in service.feature_view_projections:
        view = views.get(projection.name)
        ttl = view.ttl if view is not None and view.ttl else None
        for field in projection.features:
            out.append(ContractFeature(field.name, _feast_dtype(field.dtype), projection.name, ttl))
    return out


def _feast_dtype(dtype: object) -> str:
    name = getattr(dtype, "name", str(dtype)).upper()
    mapping = {"FLOAT32": "float32", "FLOAT64": "float64", "INT64": "int64", "INT32": "int64"}
    if name not in mapping:
        raise ContractMismatchError(f"feature dtype {dtype} is not numeric; cannot serve it")
    return mapping[name]
