"""``FeatureTransformer``: the KServe model in front of the predictor.

``load`` opens the feature repo and checks the contract; ``preprocess`` validates the request
and reads its features (one batched online read); ``predict`` calls the predictor;
``postprocess`` answers in the client's protocol (KServe V1, V2 REST or V2 gRPC).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from contextlib import AbstractAsyncContextManager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import kserve
import numpy as np
from kserve.model import InferenceVerb
from kserve.protocol.infer_type import InferInput, InferOutput, InferRequest, InferResponse

from berth.artifact import ArtifactMetadata, read_metadata
from berth.errors import ArtifactError, BerthError, ContractMismatchError
from berth.featurerepo import ContractFeature
from berth.observability import REQUEST_ID_HEADER, get_logger
from berth.serving.errors import Served, served
from berth.serving.guard import Guard
from berth_transformer import contract, metrics, routing
from berth_transformer.data_contract import ServedContract, open_contract
from berth_transformer.drift_monitor import DriftMonitor, open_monitor
from berth_transformer.explain import ExplainBound, Explainer, make_explainer, unavailable
from berth_transformer.features import FeatureReader, open_reader, store_faults
from berth_transformer.predictor_client import INPUT_NAME, Link, PredictorClient, make_client
from berth_transformer.schema import V2_INPUTS, V2_OUTPUT, check_outputs, parse_v1, parse_v2
from berth_transformer.settings import TransformerSettings
from berth_transformer.shadow import Shadow, ShadowCopy

log = get_logger(__name__)
T = TypeVar("T")
MODEL_VERSION_HEADER = "x-model-version"
FILLED_HEADER = "x-berth-filled-values"  # values filled from the artifact's defaults
UNKNOWN_HEADER = "x-berth-unknown-entities"  # entities with no stored value ("k=v;k=v")


@dataclass(frozen=True)
class _Call:
    """What postprocess needs to answer in the client's protocol."""

    protocol: str  # "v1" | "v2" | "grpc-v2"
    request_id: str
    response_id: str
    binary_outputs: bool = False
    degraded: dict[str, Any] = field(default_factory=dict)  # set once the features are read


PLATFORM = "berth_transformer"  # OIP model metadata: what serves the model

_call: ContextVar[_Call] = ContextVar("berth_transformer_call")


class FeatureTransformer(kserve.Model):  # type: ignore[misc]
    """Candidates in, scores out: Feast online features -> predictor (Open Inference V2)."""

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
        self.router, self.shadow = _rollout_clients(name, settings, predictor_protocol)

    async def finish_background(self, budget_s: float) -> None:
        """At shutdown, once no request is in flight: send the queued shadow copies (bounded)."""
        if self.shadow is not None:
            await self.shadow.drain(budget_s)

    def load(self) -> bool:
        """Open the FeatureService and check it against the predictor; refuse on a mismatch."""
        store, features, artifact = self._open_repo()
        served = contract.parse_metadata(_run_aside(self._predictor_metadata()))
        contract.check(self.settings.feature_service, features, served, artifact)
        s = self.settings
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
        self._check_extra_predictors(features)
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

    def _check_extra_predictors(self, features: list[ContractFeature]) -> None:
        """Canary and shadow must serve the same FeatureService (their version may differ)."""
        self.router.versions[routing.PRIMARY] = self.model_version
        extra: list[tuple[str, PredictorClient, str | None]] = []
        if self.router.canary is not None:
            extra.append(("canary", self.router.canary, self.settings.canary_host))
        if self.shadow is not None:
            extra.append(("shadow", self.shadow.client, self.settings.shadow_host))
        for role, client, host in extra:
            try:
                meta = _run_aside(_metadata_of(client, self.settings.startup_timeout_s))
                served = contract.parse_metadata(meta)
                contract.check(self.settings.feature_service, features, served, None)
            except BerthError as exc:
                raise ContractMismatchError(f"{role} predictor {host}: {exc.message}") from None
            if role == "canary":
                self.router.versions[routing.CANARY] = served.version
            else:
                assert self.shadow is not None
                self.shadow.version = served.version
            log.info(f"{role} checked", host=host, model_version=served.version)

    def _open_repo(self) -> tuple[Any, list[ContractFeature], ArtifactMetadata | None]:
        """The store, the FeatureService's features, and the mounted artifact metadata."""
        from berth.featurerepo import open_store, service_contract

        s = self.settings
        store = open_store(s.feature_repo, s.feature_store_yaml)
        features = service_contract(store, s.feature_service)
        artifact = _read_artifact(s.model_metadata)
        views = list(dict.fromkeys(f.view for f in features))
        if artifact is None and s.needs_defaults(views):
            raise ContractMismatchError(
                "a `default` missing/stale policy needs the fill values of the artifact: set "
                "BERTH_TRANSFORMER_MODEL_METADATA to its metadata.json (or make every view "
                "`reject`)"
            )
        return store, features, artifact

    async def _predictor_metadata(self) -> dict[str, Any]:
        try:
            return await contract.wait_for_metadata(self.predictor, self.settings.startup_timeout_s)
        finally:  # the serving loop opens its own channel/session
            await self.predictor.close()

    async def __call__(
        self,
        body: dict[str, Any] | InferRequest,
        headers: dict[str, str] | None = None,
        verb: InferenceVerb = InferenceVerb.PREDICT,
    ) -> Any:
        """Request id, end-to-end latency by outcome, and the error mapping around KServe's."""
        headers = headers if headers is not None else {}
        request = Served.of(headers)
        call = _client_call(body, request.request_id)
        token = _call.set(call)
        route = routing.begin(self.model_version)
        started = time.perf_counter()
        try:
            with served(request):
                async with self._admission(verb):
                    return await super().__call__(body, headers, verb)
        finally:
            elapsed, outcome = time.perf_counter() - started, request.outcome
            metrics.REQUEST_SECONDS.labels(call.protocol, outcome).observe(elapsed)
            if verb != InferenceVerb.EXPLAIN:  # canary analysis compares predictions only
                routing.observe(route, outcome, elapsed)
            if logging.getLogger(__name__).isEnabledFor(logging.DEBUG):
                log.debug(
                    "request done",
                    protocol=call.protocol,
                    status=outcome,
                    seconds=elapsed,
                    request_id=request.request_id,
                    trace_id=(request.traceparent or "--").split("-")[1],
                )
            _call.reset(token)

    def _admission(self, verb: InferenceVerb) -> AbstractAsyncContextManager[None]:
        """``:explain`` has its own in-flight bound and deadline (explain.py)."""
        if verb == InferenceVerb.EXPLAIN:
            return self.explain_bound.admit()
        return self.guard.request("the feature read and the predictor")

    async def explain(
        self, payload: InferRequest, headers: dict[str, str] | None = None
    ) -> dict[str, Any]:
        """Shapley attributions per candidate against the training defaults (explain.py)."""
        if self.explainer is None:
            raise unavailable()
        request_id = _call.get().request_id

        async def score(rows: np.ndarray) -> np.ndarray:
            return (await self.predictor.infer(rows, request_id)).scores

        explanations = await self.explainer.explain(payload.inputs[0].data, score)
        return {"explanations": explanations, "model_version": self.model_version}

    def get_input_types(self) -> list[dict[str, Any]]:
        """V2 model metadata (REST and gRPC): one 1-D tensor per request field, a value per
        candidate, so a client can build the request from the metadata alone."""
        return [{"name": name, "datatype": kind, "shape": [-1]} for name, kind in V2_INPUTS.items()]

    def get_output_types(self) -> list[dict[str, Any]]:
        return [{"name": V2_OUTPUT, "datatype": "FP32", "shape": [-1]}]

    def v2_metadata(self) -> dict[str, Any]:
        """The OIP model metadata, the same over REST and gRPC (KServe's has no versions)."""
        return {
            "name": self.name,
            "versions": self.router.served(),
            "platform": PLATFORM,
            "inputs": self.get_input_types(),
            "outputs": self.get_output_types(),
        }

    async def preprocess(
        self, payload: dict[str, Any] | InferRequest, headers: dict[str, str] | None = None
    ) -> InferRequest:
        """Validate the candidates, read their features: the predictor's V2 request."""
        limit = self.settings.max_candidates
        if isinstance(payload, InferRequest):
            check_outputs(payload.request_outputs)
            candidates = parse_v2(payload.inputs, limit)
        else:
            candidates = parse_v1(payload, limit)
        metrics.CANDIDATES.observe(len(candidates))
        if len(candidates.customer_id):
            self.router.route(int(candidates.customer_id[0]))
        assert self.reader is not None, "load() first"
        matrix, report = await self.reader.read(candidates)
        filled = report.filled
        if self.data_contract is not None:
            filled += self.data_contract.check(matrix)
        _call.get().degraded.update(
            filled_values=filled, unknown_entities=store_faults.listed(report.unknown)
        )
        if self.drift is not None:
            self.drift.observe(matrix)
        return InferRequest(
            model_name=self.name,
            infer_inputs=[InferInput(INPUT_NAME, list(matrix.shape), "FP32", data=matrix)],
            request_id=_call.get().request_id,
        )

    async def predict(
        self,
        payload: InferRequest,
        headers: dict[str, str] | None = None,
        response_headers: dict[str, str] | None = None,
    ) -> InferResponse:
        """One call to the predictor (gRPC V2 or REST V2), with its timeout."""
        route = routing.current() or routing.Route(routing.PRIMARY, self.model_version)
        features = payload.inputs[0].data
        client = self.router.canary if route.target == routing.CANARY else None
        prediction = await (client or self.predictor).infer(features, payload.id)
        self.router.answered(route, prediction.model_version)
        if self.shadow is not None:
            copy = ShadowCopy(features, prediction.scores, payload.id, route.model_version)
            self.shadow.submit(copy)
        return InferResponse(
            response_id=payload.id,
            model_name=self.name,
            model_version=route.model_version or self.model_version,
            infer_outputs=[
                InferOutput(V2_OUTPUT, [len(prediction.scores)], "FP32", data=prediction.scores)
            ],
        )

    async def postprocess(
        self,
        result: InferResponse | dict[str, Any],
        headers: dict[str, str] | None = None,
        response_headers: dict[str, str] | None = None,
    ) -> dict[str, Any] | InferResponse:
        """Scores in input order, in the client's protocol (``:explain``: its V1 body)."""
        call = _call.get()
        version = result["model_version"] if isinstance(result, dict) else result.model_version
        if response_headers is not None:
            response_headers[REQUEST_ID_HEADER] = call.request_id
            if version:
                response_headers[MODEL_VERSION_HEADER] = version
            response_headers[FILLED_HEADER] = str(call.degraded.get("filled_values", 0))
            response_headers[UNKNOWN_HEADER] = call.degraded.get("unknown_entities", "")
        if isinstance(result, dict):
            return result
        scores: np.ndarray = result.outputs[0].data
        if call.protocol == "v1":
            return {"predictions": scores.tolist(), "model_version": result.model_version}
        return InferResponse(
            response_id=call.response_id,
            model_name=self.name,
            model_version=result.model_version,
            infer_outputs=[InferOutput(V2_OUTPUT, [len(scores)], "FP32", data=scores.tolist())],
            use_binary_outputs=call.binary_outputs,
            parameters=dict(call.degraded),  # filled_values, unknown_entities
        )


def _rollout_clients(
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


def _client_call(body: object, request_id: str) -> _Call:
    if not isinstance(body, InferRequest):
        return _Call("v1", request_id, request_id)
    binary = bool(body.use_binary_outputs)  # REST: the request's binary_data_output
    if not body.from_grpc:
        for output in body.request_outputs or []:  # an output's own binary_data wins
            if output.binary_data is not None:
                binary = bool(output.binary_data)
    return _Call(
        "grpc-v2" if body.from_grpc else "v2",
        request_id,
        body.id or request_id,  # V2 REST without "id" arrives with None
        binary,
    )


def _run_aside(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on a private loop, leaving the thread's current loop (KServe's) alone."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()


def _read_artifact(path: Path | None) -> ArtifactMetadata | None:
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
