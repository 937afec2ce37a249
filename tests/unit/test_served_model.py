"""``ServedModel.run_handlers``: KServe's handler pipeline, run by Berth's models."""

from __future__ import annotations

import asyncio
import logging
from contextlib import AbstractAsyncContextManager, nullcontext
from typing import Any

import pytest
from kserve.model import InferenceVerb
from prometheus_client import CollectorRegistry, Histogram

from berth.serving.metrics import LabelCache
from berth.serving.served_model import ServedModel

SECONDS = LabelCache(
    Histogram("t_served_seconds", "", ["protocol", "outcome"], registry=CollectorRegistry())
)


class Echo(ServedModel):
    request_seconds = SECONDS

    def __init__(self) -> None:
        super().__init__("echo", return_response_headers=True)
        self.steps: list[str] = []

    def admission(self, verb: InferenceVerb) -> AbstractAsyncContextManager[None]:
        return nullcontext()  # type: ignore[return-value]

    async def preprocess(self, payload: Any, headers: Any = None) -> Any:
        self.steps.append("preprocess")
        return [payload]

    def validate(self, payload: Any) -> Any:
        self.steps.append("validate")
        return payload

    async def predict(self, payload: Any, headers: Any = None, response_headers: Any = None) -> Any:
        self.steps.append("predict")
        response_headers["x-step"] = "predict"
        return [*payload, "scored"]

    async def explain(self, payload: Any, headers: Any = None) -> Any:
        self.steps.append("explain")
        return [*payload, "explained"]

    async def postprocess(
        self, response: Any, headers: Any = None, response_headers: Any = None
    ) -> Any:
        self.steps.append("postprocess")
        response_headers["x-post"] = "yes"
        return {"out": response}


def test_predict_runs_each_handler_once_in_order_with_the_response_headers() -> None:
    model = Echo()
    response, headers = asyncio.run(model({"in": 1}, {}))
    assert model.steps == ["preprocess", "validate", "predict", "postprocess"]
    assert response == {"out": [{"in": 1}, "scored"]}
    assert headers == {"x-step": "predict", "x-post": "yes"}
    assert SECONDS.labels("v1", "200")._sum.get() > 0


def test_explain_runs_explain_instead_of_predict() -> None:
    model = Echo()
    response, headers = asyncio.run(model("x", {}, InferenceVerb.EXPLAIN))
    assert model.steps == ["preprocess", "validate", "explain", "postprocess"]
    assert response == {"out": ["x", "explained"]}
    assert headers == {"x-post": "yes"}


def test_another_verb_is_refused_as_kserve_refuses_it() -> None:
    model = Echo()
    with pytest.raises(NotImplementedError):
        asyncio.run(model.run_handlers("x", {}, "generate"))  # type: ignore[arg-type]
    assert model.steps == ["preprocess", "validate"]


def test_the_timing_trace_line_only_with_latency_logging(caplog: pytest.LogCaptureFixture) -> None:
    model = Echo()
    caplog.set_level(logging.INFO, logger="kserve.trace")
    asyncio.run(model("x", {"x-request-id": "r-1"}))
    assert not [r for r in caplog.records if r.name == "kserve.trace"]
    model.enable_latency_logging = True
    asyncio.run(model("x", {"x-request-id": "r-2"}))
    (line,) = [r.getMessage() for r in caplog.records if r.name == "kserve.trace"]
    assert line.startswith("requestId: r-2, preprocess_ms: ")
    assert "explain_ms: 0, predict_ms: " in line and "postprocess_ms: " in line
