"""InferRoutes alone: POST to a route answered by its handler, errors as the app answers them,
everything else handed to the app untouched."""

from __future__ import annotations

import warnings

import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from kserve.errors import InvalidInput
from starlette.responses import Response

from berth.errors import InvalidInputError, OverloadedError
from berth.serving.errors import WireError
from berth.serving.infer_routes import Call, Front, Route

with warnings.catch_warnings():  # Starlette's notice that it prefers httpx2
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


async def _echo(call: Call) -> Response:
    body = {
        "model": call.params["model_name"],
        "size": len(call.body),
        "id": call.headers.get("x-id"),
    }
    return JSONResponse(body)


async def _raise(call: Call) -> Response:
    raise {
        "berth": InvalidInputError("input 'x' is bad", field="x"),
        "wire": WireError(OverloadedError("too many", retry_after_s=3), "rid-9"),
        "kserve": InvalidInput("kserve says no"),
        "bug": RuntimeError("secret internals"),
    }[call.params["model_name"]]


@pytest.fixture
def client() -> TestClient:
    app = FastAPI()

    @app.post("/v2/models/{model_name}/other")
    async def other(model_name: str) -> dict[str, str]:
        return {"from": "app"}

    @app.get("/v2/models/{model_name}/infer")
    async def get_infer(model_name: str) -> dict[str, str]:
        return {"from": "app"}

    front = Front([Route("/v2/models/{model_name}/infer", _echo), Route("/x/{model_name}", _raise)])
    return TestClient(front.app(app), raise_server_exceptions=False)


def test_a_route_is_answered_by_its_handler_with_params_body_and_headers(
    client: TestClient,
) -> None:
    answer = client.post("/v2/models/m%20one/infer", content=b"12345", headers={"X-Id": "a"})
    assert answer.status_code == 200
    assert answer.json() == {"model": "m one", "size": 5, "id": "a"}


def test_other_methods_and_paths_go_to_the_app(client: TestClient) -> None:
    assert client.get("/v2/models/m/infer").json() == {"from": "app"}
    assert client.post("/v2/models/m/other").json() == {"from": "app"}
    assert client.post("/v2/models/m/infer/more").status_code == 404


def test_errors_are_answered_as_the_apps_handlers_answer_them(client: TestClient) -> None:
    refused = client.post("/x/berth", headers={"x-request-id": "given-1"})
    assert refused.status_code == 400 and refused.json() == {"error": "input 'x' is bad"}
    assert refused.headers["x-request-id"] == "given-1"
    wire = client.post("/x/wire")
    assert wire.status_code == 429 and wire.headers["retry-after"] == "3"
    assert wire.headers["x-request-id"] == "rid-9"
    assert client.post("/x/kserve").json() == {"error": "kserve says no"}
    bug = client.post("/x/bug")
    assert bug.status_code == 500 and "secret" not in bug.text
