"""``python -m benchmarks.tuned.transformer --model_name M --repo R --predictor_url URL``.

The tuned peer chain's transformer: what a competent team builds from well-known parts without
Berth. A KServe ``Model`` like the baseline's (same Feast FeatureService, same column order),
but ``preprocess`` awaits Feast's async SDK (``get_online_features_async``: the event loop is
never blocked on Redis) and ``predict`` posts Open Inference V2 JSON to MLServer's REST
endpoint through one pooled ``aiohttp`` session (orjson on both sides). Its predictor is the
``mlserver`` peer (adaptive batching). KServe's other defaults are kept.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import aiohttp
import kserve
import numpy as np
import orjson
from kserve import model_server

from benchmarks.baseline.transformer import ENTITY_FIELDS, FeastTransformer, _number


class AsyncFeastTransformer(FeastTransformer):
    def __init__(self, name: str, repo: Path, feature_service: str, predictor_url: str) -> None:
        super().__init__(name, repo, feature_service)
        self.infer_url = f"{predictor_url.rstrip('/')}/v2/models/{name}/infer"
        self.session: aiohttp.ClientSession | None = None

    async def preprocess(  # type: ignore[override]
        self, payload: Any, headers: dict[str, str] | None = None
    ) -> np.ndarray:
        entity_rows = [{key: row[key] for key in ENTITY_FIELDS} for row in payload["instances"]]
        response = await self.store.get_online_features_async(
            features=self.service, entity_rows=entity_rows
        )
        features = response.to_dict()
        return np.array(  # the baseline's matrix, built the baseline's way
            [
                [_number(features[name][i]) for name in self.columns]
                for i in range(len(entity_rows))
            ],
            dtype=np.float32,
        )

    async def predict(  # type: ignore[override]
        self, matrix: np.ndarray, headers: dict[str, str] | None = None
    ) -> dict[str, Any]:
        if self.session is None:  # made on the server's loop, kept for every request
            connector = aiohttp.TCPConnector(limit=256)
            self.session = aiohttp.ClientSession(connector=connector)
        body = orjson.dumps(
            {
                "inputs": [
                    {
                        "name": "features",
                        "shape": list(matrix.shape),
                        "datatype": "FP32",
                        "data": matrix.astype(np.float64).ravel(),
                    }
                ]
            },
            option=orjson.OPT_SERIALIZE_NUMPY,
        )
        async with self.session.post(
            self.infer_url, data=body, headers={"content-type": "application/json"}
        ) as resp:
            answer = orjson.loads(await resp.read())
            if resp.status != 200:
                raise kserve.errors.InferenceError(f"predictor answered {resp.status}: {answer}")
        return {"predictions": answer["outputs"][0]["data"]}


def main() -> None:
    parser = argparse.ArgumentParser(parents=[model_server.parser])
    parser.add_argument("--repo", required=True, help="Feast repo (feature_store.yaml)")
    parser.add_argument("--feature_service", default="driver_ranking_v1")
    parser.add_argument("--predictor_url", required=True, help="MLServer's REST base URL")
    args, _ = parser.parse_known_args()
    os.environ.setdefault("REDIS_CONNECTION_STRING", "127.0.0.1:6379")
    model = AsyncFeastTransformer(
        args.model_name, Path(args.repo), args.feature_service, args.predictor_url
    )
    model.load()
    kserve.ModelServer().start([model])


if __name__ == "__main__":
    main()
