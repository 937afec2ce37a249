"""``python -m benchmarks.baseline.transformer --model_name M --predictor_host H:P --repo R``.

Built the way KServe's Feast transformer sample works: ``preprocess`` is synchronous and reads
the request's features with the Feast SDK (``get_online_features(...).to_dict()``) on the event
loop, then builds V1 ``instances`` in the FeatureService's order; ``predict`` is KServe's own
(``Model.predict`` -> its httpx REST client, protocol v1, to ``--predictor_host``). KServe's
defaults are kept, its per-request trace log included.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import kserve
from kserve import model_server

ENTITY_FIELDS = ("driver_id", "customer_id", "trip_distance_km", "pickup_hour")


class FeastTransformer(kserve.Model):  # type: ignore[misc]
    def __init__(self, name: str, repo: Path, feature_service: str) -> None:
        super().__init__(name)
        self.repo = repo
        self.feature_service_name = feature_service
        self.store: Any = None
        self.service: Any = None
        self.columns: list[str] = []

    def load(self) -> bool:
        from feast import FeatureStore

        self.store = FeatureStore(repo_path=str(self.repo))
        self.service = self.store.get_feature_service(self.feature_service_name)
        self.columns = [
            field.name
            for projection in self.service.feature_view_projections
            for field in projection.features
        ]
        self.ready = True
        return self.ready

    def preprocess(self, payload: Any, headers: dict[str, str] | None = None) -> dict[str, Any]:
        rows = payload["instances"]
        entity_rows = [{key: row[key] for key in ENTITY_FIELDS} for row in rows]
        features = self.store.get_online_features(
            features=self.service, entity_rows=entity_rows
        ).to_dict()
        instances = [
            [_number(features[name][i]) for name in self.columns] for i in range(len(rows))
        ]
        return {"instances": instances}


def _number(value: Any) -> float:
    return 0.0 if value is None else float(value)


def main() -> None:
    parser = argparse.ArgumentParser(parents=[model_server.parser])
    parser.add_argument("--repo", required=True, help="Feast repo (feature_store.yaml)")
    parser.add_argument("--feature_service", default="driver_ranking_v1")
    args, _ = parser.parse_known_args()
    os.environ.setdefault("REDIS_CONNECTION_STRING", "127.0.0.1:6379")
    model = FeastTransformer(args.model_name, Path(args.repo), args.feature_service)
    model.load()
    kserve.ModelServer().start([model])


if __name__ == "__main__":
    main()
