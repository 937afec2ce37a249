"""What ``FeatureTransformer.load`` does before serving: open the feature repo and the mounted
artifact metadata, reach each predictor (primary, canary, shadow) and check its contract."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from berth.artifact import ArtifactMetadata, read_metadata
from berth.contract import PredictorModel
from berth.errors import ArtifactError, BerthError, ContractMismatchError
from berth.featurerepo import ContractFeature
from berth.observability import get_logger
from berth_transformer import contract, routing
from berth_transformer.predictor_client import Link, PredictorClient
from berth_transformer.predictor_grpc import GrpcPredictorClient
from berth_transformer.predictor_rest import RestPredictorClient
from berth_transformer.settings import TransformerSettings
from berth_transformer.shadow import Shadow

log = get_logger("berth_transformer.model")
T = TypeVar("T")


def open_repo(s: TransformerSettings) -> tuple[Any, list[ContractFeature], ArtifactMetadata | None]:
    """The store, the FeatureService's features, and the mounted artifact metadata."""
    from berth.featurerepo import open_store, service_contract

    store = open_store(s.feature_repo, s.feature_store_yaml)
    features = service_contract(store, s.feature_service)
    artifact = read_artifact(s.model_metadata)
    views = list(dict.fromkeys(f.view for f in features))
    if artifact is None and s.needs_defaults(views):
        raise ContractMismatchError(
            "a `default` missing/stale policy needs the fill values of the artifact: set "
            "BERTH_TRANSFORMER_MODEL_METADATA to its metadata.json (or make every view "
            "`reject`)"
        )
    return store, features, artifact


def predictor_model(client: PredictorClient, timeout_s: float) -> PredictorModel:
    """What ``client``'s predictor serves, from its model metadata (waited for, bounded)."""
    return contract.parse_metadata(run_aside(_metadata_of(client, timeout_s)))


def check_rollout(
    s: TransformerSettings,
    features: list[ContractFeature],
    router: routing.Router,
    shadow: Shadow | None,
) -> None:
    """Canary and shadow must serve the same FeatureService (their version may differ)."""
    extra: list[tuple[str, PredictorClient, str | None]] = []
    if router.canary is not None:
        extra.append(("canary", router.canary, s.canary_host))
    if shadow is not None:
        extra.append(("shadow", shadow.client, s.shadow_host))
    for role, client, host in extra:
        try:
            served = predictor_model(client, s.startup_timeout_s)
            contract.check(s.feature_service, features, served, None)
        except BerthError as exc:
            raise ContractMismatchError(f"{role} predictor {host}: {exc.message}") from None
        if role == "canary":
            router.versions[routing.CANARY] = served.version
        else:
            assert shadow is not None
            shadow.version = served.version
        log.info(f"{role} checked", host=host, model_version=served.version)


def rollout_clients(
    name: str, s: TransformerSettings, protocol: str
) -> tuple[routing.Router, Shadow | None]:
    """The canary (in the router) and the shadow, from the settings."""
    canary = None
    if s.canary_host and s.canary_percent > 0:
        canary = make_client(protocol, s.canary_host, name, link(s, s.predictor_timeout_ms))
    shadow = None
    if s.shadow_host:
        client = make_client(protocol, s.shadow_host, name, link(s, s.shadow_timeout_ms, 0))
        shadow = Shadow(client, s.shadow_queue_size, linger_s=s.shadow_linger_ms / 1000)
    return routing.Router(canary, s.canary_percent), shadow


def make_client(protocol: str, host: str, model_name: str, link: Link) -> PredictorClient:
    """``v2`` (REST, the default) or ``grpc-v2``; KServe V1 is not the predictor's protocol."""
    if protocol == "grpc-v2":
        return GrpcPredictorClient(host, model_name, link)
    if protocol == "v2":
        return RestPredictorClient(host, model_name, link)
    raise ValueError(f"predictor protocol {protocol!r} is not supported (use grpc-v2 or v2)")


def link(s: TransformerSettings, timeout_ms: int, retries: int | None = None) -> Link:
    """How to reach a predictor: the settings' TLS and retries, with this timeout."""
    return Link(
        timeout_ms / 1000,
        s.predictor_retries if retries is None else retries,
        s.predictor_tls,
        s.predictor_ca_bundle,
    )


async def _metadata_of(client: PredictorClient, timeout_s: float) -> dict[str, Any]:
    try:
        return await contract.wait_for_metadata(client, timeout_s)
    finally:  # the serving loop opens its own channel/session
        await client.close()


def run_aside(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on a private loop, leaving the thread's current loop (KServe's) alone."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()


def read_artifact(path: Path | None) -> ArtifactMetadata | None:
    """The mounted ``metadata.json`` (or the artifact directory holding it)."""
    if path is None:
        return None
    if path.is_dir():
        return read_metadata(path)
    try:
        return ArtifactMetadata.model_validate_json(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise ArtifactError(
            f"{path}: not readable artifact metadata ({exc})", file=path.name
        ) from exc
