"""``Ranking``: one transformer request between the handlers (as the predictor's ``Scoring``).

``FeatureTransformer.__call__`` makes it from the body as received and passes it through
KServe's preprocess -> predict (or explain) -> postprocess; each handler reads what the ones
before it filled in: the decoded request and the client's protocol, the candidates, their
features, the route (target and model version, or the target the request pinned), the
predictor's answer, and what postprocess reports (filled values, unknown entities).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeAlias

import numpy as np
from kserve.protocol.infer_type import InferRequest

from berth.serving.codec import RestBody
from berth_transformer.predictor_client import Prediction
from berth_transformer.routing import Route
from berth_transformer.schema import Candidates

Body: TypeAlias = "dict[str, Any] | InferRequest | RestBody"


@dataclass
class Ranking:
    """One request: what was asked, then its candidates, features, route and scores."""

    body: Body  # as received; REST V2 arrives undecoded (decoded in preprocess)
    route: Route
    pinned: str | None = None  # the target a version in the path asked for (None: by bucket)
    request_id: str = ""  # the call's (set in preprocess)
    request: dict[str, Any] | InferRequest | None = None  # the decoded body
    response_id: str = ""
    binary_outputs: bool = False  # REST: the request's binary_data_output (or the output's)
    candidates: Candidates | None = None
    features: np.ndarray | None = None
    degraded: dict[str, Any] = field(default_factory=dict)  # filled_values, unknown_entities
    prediction: Prediction | None = None
    explanation: dict[str, Any] | None = None  # the ``:explain`` answer

    @property
    def protocol(self) -> str:
        """The client's protocol: ``v1``, ``v2`` (REST) or ``grpc-v2`` (metrics label)."""
        body = self.body
        if isinstance(body, RestBody):
            return body.protocol
        if isinstance(body, InferRequest):
            return "grpc-v2" if body.from_grpc else "v2"
        return "v1"

    def decode(self, model_name: str) -> dict[str, Any] | InferRequest:
        """The body as a V1 object or an :class:`InferRequest` (an ``InvalidInputError`` for a
        REST body that does not decode), with the answer's id and binary flag."""
        body = self.body.decode(model_name) if isinstance(self.body, RestBody) else self.body
        self.request, self.response_id = body, self.request_id
        if isinstance(body, InferRequest):
            self.response_id = body.id or self.request_id  # V2 REST without "id": None
            self.binary_outputs = bool(body.use_binary_outputs)
            if not body.from_grpc:
                for output in body.request_outputs or []:  # an output's own binary_data wins
                    if output.binary_data is not None:
                        self.binary_outputs = bool(output.binary_data)
        return body
