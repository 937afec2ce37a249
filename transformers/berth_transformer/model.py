"""``FeatureTransformer``: the KServe model in front of the predictor.

``load`` opens the feature repo and checks the contract (startup.py). A request travels as one
:class:`~berth_transformer.ranking.Ranking`: ``preprocess`` decodes and validates it, routes it
and reads its features (one batched online read); ``predict`` calls the predictor;
``postprocess`` answers in the client's protocol (KServe V1, V2 REST or V2 gRPC).
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Any

import numpy as np
from kserve.model import InferenceVerb
from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse

from berth.observability import get_logger, request_id_var
from berth.serving.errors import Served
from berth.serving.guard import Guard
from berth.serving.served_model import ServedModel
from berth.wire import (
    FILLED_HEADER,
    MODEL_VERSION_HEADER,
    OUTPUT_NAME,
    REQUEST_ID_HEADER,
    UNKNOWN_HEADER,
)
from berth_transformer import contract, metrics, routing
from berth_transformer.data_contract import ServedContract, open_contract
from berth_transformer.drift_monitor import DriftMonitor, open_monitor
from berth_transformer.explain import ExplainBound, Explainer, make_explainer, unavailable
from berth_transformer.features import FeatureReader, open_reader, store_faults
from berth_transformer.predictor_client import PredictorClient
from berth_transformer.ranking import Body, Ranking
from berth_transformer.schema import V2_INPUTS, check_outputs, parse_v1, parse_v2
from berth_transformer.settings import TransformerSettings
from berth_transformer.shadow import ShadowCopy
from berth_transformer.startup import (
    check_rollout,
    link,
    make_client,
    open_repo,
    predictor_model,
    rollout_clients,
)

log = get_logger(__name__)
PLATFORM = "berth_transformer"  # OIP model metadata: what serves the model


class FeatureTransformer(ServedModel):
    """Candidates in, scores out: Feast online features -> predictor (Open Inference V2)."""

    request_seconds = metrics.REQUEST_SECONDS
    served_log_name = __name__

    def __init__(
        self,
        name: str,
        settings: TransformerSettings,
        predictor_host: str,
        predictor_protocol: str = "grpc-v2",
    ) -> None:
        super().__init__(name, return_response_headers=True)
        self.settings = settings
        self.predictor: PredictorClient = make_client(
            predictor_protocol, predictor_host, name, link(settings, settings.predictor_timeout_ms)
        )
        self.reader: FeatureReader | None = None
        self.model_version = ""
        self.guard = Guard(
            settings.max_inflight,
            deadline_s=settings.deadline_s,
            setting="BERTH_TRANSFORMER_MAX_INFLIGHT",
            on_reject=lambda reason: metrics.REJECTED.labels(reason).inc(),
        )
        self.drift: DriftMonitor | None = None
        self.explainer: Explainer | None = None
        self.data_contract: ServedContract | None = None
        self.explain_bound = ExplainBound(
            settings.explain_max_inflight, settings.explain_deadline_ms / 1000
        )
        self.router, self.shadow = rollout_clients(name, settings, predictor_protocol)

    async def finish_background(self, budget_s: float) -> None:
        """At shutdown, once no request is in flight: send the queued shadow copies (bounded)."""
        if self.shadow is not None:
            await self.shadow.drain(budget_s)

    def load(self) -> bool:
        """Open the FeatureService and check it against the predictor; refuse on a mismatch."""
        s = self.settings
        store, features, artifact = open_repo(s)
        served = predictor_model(self.predictor, s.startup_timeout_s)
        contract.check(s.feature_service, features, served, artifact)
        defaults = {f.name: f.default for f in artifact.features} if artifact else None
        self.reader = open_reader(
            store,
            s.feature_service,
            features,
            defaults,
            s.missing_policy,
            s.stale_policy,
            s.feature_timeout_ms / 1000,
            s.feature_source,
            s.all_missing_status,
        )
        self.model_version = served.version
        self.router.versions[routing.PRIMARY] = served.version
        check_rollout(s, features, self.router, self.shadow)
        columns = [f.name for f in self.reader.features]
        self.drift = open_monitor(
            artifact, columns, s.drift_window, s.drift_refresh_s, s.drift_min_rows
        )
        self.explainer = make_explainer(artifact, columns, s)
        self.data_contract = open_contract(artifact, features, s.contract_policy)
        log.info(
            "contract checked",
            feature_service=s.feature_service,
            features=len(features),
            model_version=served.version,
            predictor=self.predictor.protocol,
        )
        self.ready = True
        return self.ready

    async def __call__(
        self,
        body: Body | Ranking,
        headers: dict[str, str] | None = None,
        verb: InferenceVerb = InferenceVerb.PREDICT,
        *,
        pinned: str | None = None,
    ) -> Any:
        """KServe's model call (request id, admission, outcome and latency: ServedModel) on
        one :class:`Ranking`; ``pinned``: the target serving a version the request named."""
        if not isinstance(body, Ranking):
            body = Ranking(body, routing.Route(model_version=self.model_version), pinned)
        return await super().__call__(body, headers, verb)

    def protocol_of(self, body: object) -> str:
        assert isinstance(body, Ranking)
        return body.protocol

    def admission(self, verb: InferenceVerb) -> AbstractAsyncContextManager[None]:
        """``:explain`` has its own in-flight bound and deadline (explain.py)."""
        if verb == InferenceVerb.EXPLAIN:
            return self.explain_bound.admit()
        return self.guard.request("the feature read and the predictor")

    def finished(
        self, call: Served, body: Any, protocol: str, elapsed_s: float, verb: InferenceVerb
    ) -> None:
        """The per-version count and latency (canary analysis compares predictions only)."""
        if verb != InferenceVerb.EXPLAIN:
            routing.observe(body.route, call.outcome, elapsed_s)

    def validate(self, payload: Any) -> Any:
        return payload  # preprocess checks the candidates (schema.py)

    async def explain(self, ranking: Ranking, headers: dict[str, str] | None = None) -> Ranking:
        """Shapley attributions per candidate against the training defaults (explain.py)."""
        if self.explainer is None:
            raise unavailable()
        assert ranking.features is not None

        async def score(rows: np.ndarray) -> np.ndarray:
            return (await self.predictor.infer(rows, ranking.request_id)).scores

        explanations = await self.explainer.explain(ranking.features, score)
        ranking.explanation = {"explanations": explanations, "model_version": self.model_version}
        return ranking

    def get_input_types(self) -> list[dict[str, Any]]:
        """V2 model metadata (REST and gRPC): one 1-D tensor per request field, a value per
        candidate, so a client can build the request from the metadata alone."""
        return [{"name": name, "datatype": kind, "shape": [-1]} for name, kind in V2_INPUTS.items()]

    def get_output_types(self) -> list[dict[str, Any]]:
        return [{"name": OUTPUT_NAME, "datatype": "FP32", "shape": [-1]}]

    def v2_metadata(self) -> dict[str, Any]:
        """The OIP model metadata, the same over REST and gRPC (KServe's has no versions)."""
        return {
            "name": self.name,
            "versions": self.router.served(),
            "platform": PLATFORM,
            "inputs": self.get_input_types(),
            "outputs": self.get_output_types(),
        }

    async def preprocess(self, ranking: Ranking, headers: dict[str, str] | None = None) -> Ranking:
        """Decode and validate the candidates, route them, read their features."""
        ranking.request_id = request_id_var.get() or ""  # bound by ServedModel's call
        payload, limit = ranking.decode(self.name), self.settings.max_candidates
        if isinstance(payload, InferRequest):
            check_outputs(payload.request_outputs)
            candidates = parse_v2(payload.inputs, limit)
        else:
            candidates = parse_v1(payload, limit)
        ranking.candidates = candidates
        metrics.CANDIDATES.observe(len(candidates))
        if len(candidates.customer_id):
            self.router.route(ranking.route, int(candidates.customer_id[0]), ranking.pinned)
        assert self.reader is not None, "load() first"
        matrix, report = await self.reader.read(candidates)
        filled = report.filled
        if self.data_contract is not None:
            filled += self.data_contract.check(matrix)
        ranking.degraded.update(
            filled_values=filled, unknown_entities=store_faults.listed(report.unknown)
        )
        if self.drift is not None:
            self.drift.observe(matrix)
        ranking.features = matrix
        return ranking

    async def predict(
        self,
        ranking: Ranking,
        headers: dict[str, str] | None = None,
        response_headers: dict[str, str] | None = None,
    ) -> Ranking:
        """One call to the predictor the route names (gRPC V2 or REST V2), with its timeout."""
        route, features = ranking.route, ranking.features
        assert features is not None
        client = self.router.canary if route.target == routing.CANARY else None
        prediction = await (client or self.predictor).infer(features, ranking.request_id)
        self.router.answered(route, prediction.model_version)
        if self.shadow is not None:
            copy = ShadowCopy(features, prediction.scores, ranking.request_id, route.model_version)
            self.shadow.submit(copy)
        ranking.prediction = prediction
        return ranking

    async def postprocess(
        self,
        ranking: Ranking,
        headers: dict[str, str] | None = None,
        response_headers: dict[str, str] | None = None,
    ) -> dict[str, Any] | InferResponse:
        """Scores in input order, in the client's protocol (``:explain``: its V1 body)."""
        version = ranking.route.model_version or self.model_version
        if ranking.explanation is not None:
            version = ranking.explanation["model_version"]
        if response_headers is not None:
            response_headers[REQUEST_ID_HEADER] = ranking.request_id
            if version:
                response_headers[MODEL_VERSION_HEADER] = version
            response_headers[FILLED_HEADER] = str(ranking.degraded.get("filled_values", 0))
            response_headers[UNKNOWN_HEADER] = ranking.degraded.get("unknown_entities", "")
        if ranking.explanation is not None:
            return ranking.explanation
        assert ranking.prediction is not None
        scores = ranking.prediction.scores
        if not isinstance(ranking.request, InferRequest):
            return {"predictions": scores.tolist(), "model_version": version}
        return InferResponse(
            response_id=ranking.response_id,
            model_name=self.name,
            model_version=version,
            infer_outputs=[InferOutput(OUTPUT_NAME, [len(scores)], "FP32", data=scores.tolist())],
            use_binary_outputs=ranking.binary_outputs,
            parameters=dict(ranking.degraded),  # filled_values, unknown_entities
        )
