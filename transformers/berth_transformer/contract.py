"""The start-up contract check: the predictor's model must take this FeatureService's features.

The predictor's V2 model metadata names its FeatureService, feature list and dtypes; the
transformer reads the FeatureService from the feature repo. Any difference in name, order or
dtype refuses to start (no silent skew). When the artifact's ``metadata.json`` is mounted (it
supplies the fill values), its version and feature list must match too. The check itself is
:mod:`berth.contract` (``berth batch-score`` runs it too); here, waiting for the metadata and
reading it (the ``properties`` keys: :class:`berth.wire.ModelProperties`).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from berth.contract import PredictorModel, check, differences
from berth.errors import DeadlineExceededError, DependencyUnavailableError
from berth.wire import ModelProperties
from berth_transformer.predictor_client import PredictorClient

__all__ = ["PredictorModel", "check", "differences", "parse_metadata", "wait_for_metadata"]


async def wait_for_metadata(client: PredictorClient, timeout_s: float) -> dict[str, Any]:
    """The predictor's model metadata, retried while it is not up yet (bounded)."""
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    while True:
        try:
            return await client.metadata()
        except (DependencyUnavailableError, DeadlineExceededError) as exc:
            last = exc.message
        if time.monotonic() >= deadline:
            raise DependencyUnavailableError(
                "predictor",
                f"predictor gave no model metadata within {timeout_s:.0f}s (last: {last})",
            )
        await asyncio.sleep(0.25)


def parse_metadata(meta: dict[str, Any]) -> PredictorModel:
    """The predictor's model from its V2 model metadata (REST, or gRPC with the properties as
    trailing metadata); a :class:`ContractMismatchError` when a properties key is missing."""
    props = ModelProperties.from_metadata(meta)
    return PredictorModel(
        version=props.model_version,
        feature_service=props.feature_service,
        features=props.features,
        dtypes=props.feature_dtypes,
        inputs=list(meta.get("inputs") or []),
        outputs=list(meta.get("outputs") or []),
    )
